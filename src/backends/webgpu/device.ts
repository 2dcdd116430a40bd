/**
 * Adapter and device acquisition: `navigator.gpu` in browsers, the `webgpu` npm package (Dawn) in Node.
 *
 * Node specifics:
 * - The object Dawn's `create()` returns must stay referenced while any device made from it lives, or
 *   the addon crashes while processing events. The runtime that gave an adapter is therefore kept in a
 *   module-level variable for the life of the process and reused by every later acquisition.
 * - Without a GPU, Dawn needs a Vulkan driver that runs on the CPU. Debian 12's own lavapipe (Mesa 22.3)
 *   is refused by Dawn (no shaderUniformArrayDynamicIndexing). SwiftShader, which Debian's `chromium`
 *   package installs as `/usr/lib/chromium/vk_swiftshader_icd.json`, works. With `software: "fallback"`
 *   (the default) and no Vulkan ICD named in the environment, a runtime that offers no adapter is retried
 *   once with that ICD (the Vulkan loader reads VK_ICD_FILENAMES when Dawn creates its instance).
 *   BARBELL_WEBGPU_ICD names another ICD file for that retry.
 */
import { WebGpuError } from "./errors.js";
import type { GpuAdapterLike, GpuDeviceLike, GpuLike, GpuLimitsLike } from "./gpu-types.js";

/** ICD files of CPU Vulkan drivers Dawn accepts, tried in order when the system gives no adapter. */
export const SOFTWARE_VULKAN_ICDS: readonly string[] = ["/usr/lib/chromium/vk_swiftshader_icd.json"];

/** The WGSL language feature the integer kernels rely on (dot4I8Packed). */
export const REQUIRED_WGSL_FEATURE = "packed_4x8_integer_dot_product";

export interface AcquireOptions {
  /** "fallback" (default): in Node, retry with a CPU Vulkan driver when the system offers no adapter. */
  readonly software?: "fallback" | "never";
  readonly powerPreference?: "low-power" | "high-performance";
}

/** What was acquired, for logs and reports. */
export interface AdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** A CPU implementation (SwiftShader, lavapipe/llvmpipe): correct, but far slower than a GPU. */
  readonly software: boolean;
  /** "navigator.gpu" or "dawn-node" (plus the ICD file when the software retry supplied it). */
  readonly runtime: string;
}

/** The Dawn runtime (`create()` result) that gave an adapter: referenced for the life of the process. */
let dawnRuntime: { gpu: GpuLike; runtime: string } | undefined;

/** An acquired device with the runtime that made it. Dispose it to release the GPU. */
export class WebGpuDevice {
  #lost: string | undefined;
  #disposed = false;
  constructor(
    readonly device: GpuDeviceLike,
    readonly adapter: AdapterSummary,
  ) {
    void device.lost.then((info) => {
      this.#lost = this.#disposed ? "disposed" : `${info.reason}: ${info.message}`;
    });
  }

  get limits(): GpuLimitsLike {
    return this.device.limits;
  }

  /** Throws WebGpuError "device-failed" once the device is lost or disposed. */
  assertAlive(): void {
    if (this.#disposed) {
      throw new WebGpuError("device-failed", "[webgpu] the device was disposed");
    }
    if (this.#lost !== undefined) {
      throw new WebGpuError("device-failed", `[webgpu] the device was lost (${this.#lost})`);
    }
  }

  dispose(): void {
    if (this.#disposed) {
      return;
    }
    this.#disposed = true;
    this.device.destroy();
  }
}

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

/** `navigator.gpu` when this JS environment has one. */
function browserGpu(): GpuLike | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  return nav?.gpu ?? undefined;
}

interface DawnModule {
  create(flags: string[]): GpuLike;
}

async function loadDawn(): Promise<DawnModule | string> {
  // A variable specifier: the package is optional (installed by scripts/install-webgpu.sh, ~130 MB), so
  // neither TypeScript nor a browser bundler may resolve it at build time.
  const specifier = "webgpu";
  try {
    const mod = (await import(specifier)) as Partial<DawnModule>;
    if (typeof mod.create !== "function") {
      return "the `webgpu` package has no create() export";
    }
    return mod as DawnModule;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return code === "ERR_MODULE_NOT_FOUND"
      ? "the `webgpu` package (Dawn for Node) is not installed (scripts/install-webgpu.sh installs it)"
      : "the `webgpu` package failed to load (its native addon does not run here)";
  }
}

async function existingFile(path: string): Promise<boolean> {
  const fsName = "node:fs";
  const fs = (await import(fsName)) as { existsSync(p: string): boolean };
  return fs.existsSync(path);
}

function summarize(adapter: GpuAdapterLike, runtime: string): AdapterSummary {
  const info = adapter.info ?? {};
  const vendor = info.vendor ?? "";
  const architecture = info.architecture ?? "";
  const device = info.device ?? "";
  const description = info.description ?? "";
  const text = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  const software = /swiftshader|llvmpipe|lavapipe|warp|software/.test(text);
  return { vendor, architecture, device, description, software, runtime };
}

async function adapterFrom(gpu: GpuLike, options: AcquireOptions): Promise<GpuAdapterLike | null> {
  return options.powerPreference === undefined ? gpu.requestAdapter() : gpu.requestAdapter({ powerPreference: options.powerPreference });
}

/** Finds a runtime and an adapter, trying the software ICD in Node when allowed. */
async function findAdapter(options: AcquireOptions): Promise<{ gpu: GpuLike; adapter: GpuAdapterLike; runtime: string }> {
  const fromBrowser = browserGpu();
  if (fromBrowser !== undefined) {
    const adapter = await adapterFrom(fromBrowser, options);
    if (adapter === null) {
      throw new WebGpuError("no-adapter", "[webgpu] navigator.gpu offers no adapter");
    }
    return { gpu: fromBrowser, adapter, runtime: "navigator.gpu" };
  }
  if (!isNode()) {
    throw new WebGpuError("no-runtime", "[webgpu] this JS environment has no navigator.gpu");
  }
  const dawn = await loadDawn();
  if (typeof dawn === "string") {
    throw new WebGpuError("no-runtime", `[webgpu] ${dawn}`);
  }
  if (dawnRuntime !== undefined) {
    const again = await adapterFrom(dawnRuntime.gpu, options);
    if (again === null) {
      throw new WebGpuError("no-adapter", `[webgpu] ${dawnRuntime.runtime} no longer offers an adapter`);
    }
    return { ...dawnRuntime, adapter: again };
  }
  const gpu = dawn.create([]);
  const adapter = await adapterFrom(gpu, options);
  if (adapter !== null) {
    dawnRuntime = { gpu, runtime: "dawn-node" };
    return { gpu, adapter, runtime: dawnRuntime.runtime };
  }
  const icdNamed = process.env["VK_ICD_FILENAMES"] ?? process.env["VK_DRIVER_FILES"];
  if (options.software === "never" || icdNamed !== undefined) {
    throw new WebGpuError(
      "no-adapter",
      icdNamed === undefined
        ? "[webgpu] Dawn found no adapter (no GPU with a Vulkan driver Dawn accepts)"
        : "[webgpu] Dawn found no adapter with the Vulkan ICD named in VK_ICD_FILENAMES / VK_DRIVER_FILES",
    );
  }
  const explicit = process.env["BARBELL_WEBGPU_ICD"];
  const candidates = explicit === undefined ? SOFTWARE_VULKAN_ICDS : [explicit];
  for (const icd of candidates) {
    if (!(await existingFile(icd))) {
      continue;
    }
    process.env["VK_ICD_FILENAMES"] = icd;
    const retry = dawn.create([]);
    const software = await adapterFrom(retry, options);
    if (software !== null) {
      dawnRuntime = { gpu: retry, runtime: `dawn-node (${icd.split("/").pop() ?? "icd"})` };
      return { gpu: retry, adapter: software, runtime: dawnRuntime.runtime };
    }
    delete process.env["VK_ICD_FILENAMES"];
  }
  throw new WebGpuError(
    "no-adapter",
    "[webgpu] Dawn found no adapter: no GPU Vulkan driver, and no SwiftShader ICD " +
      "(Debian's chromium package installs /usr/lib/chromium/vk_swiftshader_icd.json; Debian 12's lavapipe is too old for Dawn)",
  );
}

/**
 * Acquires a device whose limits allow the largest storage buffers the adapter has (an output head is
 * hundreds of MB, above WebGPU's 128 MiB default). Throws WebGpuError with the reason when there is none.
 */
export async function acquireWebGpu(options: AcquireOptions = {}): Promise<WebGpuDevice> {
  const { gpu, adapter, runtime } = await findAdapter(options);
  const features = gpu.wgslLanguageFeatures;
  if (features !== undefined && !features.has(REQUIRED_WGSL_FEATURE)) {
    throw new WebGpuError("missing-feature", `[webgpu] the WGSL language feature ${REQUIRED_WGSL_FEATURE} is not available`);
  }
  let device: GpuDeviceLike;
  try {
    device = await adapter.requestDevice({
      label: "barbell",
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : "unknown reason";
    throw new WebGpuError("device-failed", `[webgpu] requestDevice failed: ${message}`);
  }
  return new WebGpuDevice(device, summarize(adapter, runtime));
}

/** Whether a WebGPU device can be acquired here, and why not; releases what it acquired. */
export async function probeWebGpu(options: AcquireOptions = {}): Promise<{ available: true; adapter: AdapterSummary } | { available: false; reason: string }> {
  try {
    const gpu = await acquireWebGpu(options);
    const adapter = gpu.adapter;
    gpu.dispose();
    return { available: true, adapter };
  } catch (error) {
    if (error instanceof WebGpuError) {
      return { available: false, reason: error.message };
    }
    throw error;
  }
}
