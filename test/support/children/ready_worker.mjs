// A plain JavaScript worker module, as the package's workers are once compiled: it says it runs.
import { parentPort } from "node:worker_threads";
parentPort.postMessage("ready");
