/** Errors of the Hugging Face hub client (src/hub): one class, a code per failure, messages that say what to do. */
import { BarbellError } from "../core/errors.js";

export type HubErrorCode =
  | "bad-name" // a repo id, file path or revision that is not allowed (`..`, absolute, backslash, too long, odd characters)
  | "bad-config" // HF_ENDPOINT, HF_TOKEN or the cache folder cannot be used
  | "unauthorized" // 401: gated, private or missing repo, or a token without access
  | "forbidden" // 403
  | "not-found" // 404: no such repo, revision or file
  | "rate-limited" // 429
  | "server" // 5xx or another status the client does not handle
  | "network" // the hub cannot be reached, or the connection dropped mid-file (after the retries; the partial file is kept)
  | "timeout" // no answer, or no bytes, within the named time limit
  | "redirect" // too many redirects, a non-http(s) target, or https -> http
  | "bad-response" // missing or malformed headers or JSON from the hub
  | "size-mismatch" // the body is longer than announced, or the finished file has the wrong size
  | "checksum" // the finished file's SHA-256 is not the hub's LFS ETag
  | "interrupted" // Ctrl-C (the abort signal) stopped a request or download: the partial file is kept for resuming
  | "disk-full" // not enough free space in the cache for the download
  | "busy" // another barbell process is downloading the same blob
  | "not-cached" // `-m hf:` names a file that is not in the cache (and --pull was not given)
  | "offline" // HF_HUB_OFFLINE is set and the file is not cached
  | "ambiguous" // the repo holds several .gguf files and none was named
  | "no-gguf"; // the repo holds no .gguf file and none was named

/** A hub, cache or download failure; never carries the token, a stack or the hub's own error text. */
export class HubError extends BarbellError {
  constructor(
    readonly code: HubErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "HubError";
  }
}
