/** An ajv (JSON Schema 2020-12 validator) set up for the grammar tests, with the four formats the compiler supports. */
import { Ajv2020 } from "ajv/dist/2020.js";

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m === null) {
    return false;
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const max = month === 2 && !leap ? 28 : (DAYS[month - 1] ?? 0);
  return month >= 1 && month <= 12 && day >= 1 && day <= max;
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;

/** A fresh validator factory: `compile(schema)` returns a validate function. */
export function createAjv(): Ajv2020 {
  return new Ajv2020({
    strict: true,
    allowUnionTypes: true,
    formats: {
      date: isDate,
      time: (s: string) => TIME.test(s),
      "date-time": (s: string) => {
        const [d, t] = s.split("T");
        return d !== undefined && t !== undefined && isDate(d) && TIME.test(t);
      },
      uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    },
  });
}
