import test from "ava";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { AbortError, CheckpointError, EndosynthError, FileFormatError } from "../../lib/errors.js";
import { rebuiltError, transferableError, type TransferredError } from "../../lib/threads/transferred_error.js";

/** Sends `value` through a real MessagePort, as a worker's reply travels. */
function throughPort(value: TransferredError): TransferredError {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(value);
  const received = receiveMessageOnPort(port2)!.message as TransferredError;
  port1.close();
  return received;
}

test("a CheckpointError crossing a port comes back as a CheckpointError with its code, file and key", (t) => {
  const original = new CheckpointError("The checkpoint a.pth looks like dav1, not midas", { file: "a.pth", key: "pretrained.cls_token" });
  const rebuilt = rebuiltError(throughPort(transferableError(original)));
  t.true(rebuilt instanceof CheckpointError);
  t.true(rebuilt instanceof EndosynthError);
  const { code, file, key, message, name } = rebuilt as CheckpointError;
  t.deepEqual({ code, file, key, message, name }, {
    code: "ERR_ENDOSYNTH_CHECKPOINT",
    file: "a.pth",
    key: "pretrained.cls_token",
    message: original.message,
    name: "CheckpointError",
  });
});

test("an error without file or key comes back without them", (t) => {
  const rebuilt = rebuiltError(throughPort(transferableError(new AbortError("The conversion was aborted"))));
  t.true(rebuilt instanceof AbortError);
  t.is((rebuilt as AbortError).file, undefined);
  t.is((rebuilt as AbortError).key, undefined);
});

test("a FileFormatError keeps its class", (t) => {
  t.true(rebuiltError(throughPort(transferableError(new FileFormatError("x.pth: truncated", { file: "x.pth" })))) instanceof FileFormatError);
});

test("a foreign error comes back as an Error keeping its name and message", (t) => {
  const rebuilt = rebuiltError(throughPort(transferableError(new RangeError("Array buffer allocation failed"))));
  t.is(rebuilt.constructor, Error);
  t.is(rebuilt.name, "RangeError");
  t.is(rebuilt.message, "Array buffer allocation failed");
});

test("a thrown non-Error value comes back as an Error with its text", (t) => {
  const rebuilt = rebuiltError(throughPort(transferableError("disk on fire")));
  t.is(rebuilt.message, "disk on fire");
  t.is(rebuilt.name, "Error");
});

test("a rebuilt error carries the stack of the call site it is given, under its own name and message", (t) => {
  const callSite = new Error("call site");
  const rebuilt = rebuiltError(transferableError(new CheckpointError("bad key")), callSite);
  const [head, ...frames] = rebuilt.stack!.split("\n");
  t.is(head, "CheckpointError: bad key");
  t.deepEqual(frames, callSite.stack!.split("\n").slice(1));
});
