/**
 * The output half of the inference contract: each model's activation and conversion to metres,
 * and the bilinear align-corners resize back to the input frame's [H, W], as ONNX subgraphs.
 * @module
 */
import type { Graph, Value } from "../../onnx/graph.js";

/** The EndoSynth wrapper's `MAX_DEPTH`, metres. */
export const MAX_DEPTH = 0.3;
/** The nearest depth the wrapper's disparity conversion (EndoDAC, MiDaS) allows, metres. */
export const MIN_DEPTH = 0.001;
/** Name of every converted model's output: float32 [H, W] metres. */
export const OUTPUT_NAME = "depth";

/**
 * Depth Anything v1 in the EndoSynth wrapper (`DepthAnythingAct("v1")`): the head's output is
 * taken as inverse depth, `MAX_DEPTH * sigmoid(-log(relu(raw) + 1e-5))`.
 */
export function depthAnythingV1Metres(g: Graph, raw: Value): Value {
  return g.scoped("to_metres", () => g.mul(g.sigmoid(g.neg(g.log(g.add(g.relu(raw), 1e-5)))), MAX_DEPTH));
}

/** Depth Anything v2 in the EndoSynth wrapper (`DepthAnythingAct("v2")`): `MAX_DEPTH * sigmoid(raw)`. */
export function depthAnythingV2Metres(g: Graph, raw: Value): Value {
  return g.scoped("to_metres", () => g.mul(g.sigmoid(raw), MAX_DEPTH));
}

/**
 * EndoDAC's and MiDaS's disparity → metres in the EndoSynth wrapper,
 * `scale / (1/0.3 + (1/0.001 - 1/0.3) * disp)` in float32: `scale` is 1 for EndoDAC and the
 * wrapper's `ALPHA` for MiDaS.
 */
export function disparityToMetres(g: Graph, disparity: Value, scale: number): Value {
  const minDisparity = 1 / MAX_DEPTH;
  const maxDisparity = 1 / MIN_DEPTH;
  return g.scoped("to_metres", () => g.div(scale, g.add(g.mul(disparity, maxDisparity - minDisparity), minDisparity)));
}

/**
 * `F.interpolate(x, (H, W), mode="bilinear", align_corners=True)[0, 0]` with (H, W) the dynamic
 * size of the input frame [H, W, C] (from `imageInput`): [1, 1, h, w] → [H, W].
 */
export function resizeToInput(g: Graph, x: Value, frame: Value): Value {
  return g.scoped("resize_to_input", () => {
    const frameSize = g.slice(g.shapeOf(frame), [0], [2], [0]);
    const sizes = g.concat([g.constant([1, 1], "int64"), frameSize], 0);
    const resized = g.resize(x, { sizes, mode: "linear", coordinateTransformationMode: "align_corners" });
    return g.reshape(resized, frameSize);
  });
}

/** Declares `depth` the model's output, float32 [H, W]. */
export function depthOutput(g: Graph, depth: Value): void {
  g.output(depth, OUTPUT_NAME, ["H", "W"]);
}
