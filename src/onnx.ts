/**
 * The `tensorseal/onnx` entry: an onnxruntime-node InferenceSession from a sealed model. Its
 * types name onnxruntime-node's, so it is a separate entry: users of the main one need no
 * onnxruntime install, and onnxruntime-node itself loads only when a model is loaded.
 */
export { type LoadOnnxOptions, loadSealedOnnx } from "./integrations/onnx.js";
