// The wire format of one peer's SparseLoCo update: the byte layout and shared checks in
// wire-format.ts, the encoder in wire-encode.ts, the validating decoder in wire-decode.ts.
export type { SparseTensor, TensorSelection } from './selection.ts';
export { UPDATE_MAGIC, UPDATE_VERSION, UPDATE_HEADER_BYTES, MAX_K, MAX_UPDATE_VALUE, MAX_NAME_BYTES, MAX_TENSORS, INDEX_FIXED, INDEX_RICE, type IndexCoding, type EncodeOptions, type UpdateReason, UpdateError, type TensorLayout, type UpdateInput, type DecodedUpdate, type DecodeExpectations, keptCount, encodedSize, denseBytes } from './wire-format.ts';
export { encodeUpdate } from './wire-encode.ts';
export { decodeOwn, decodeUpdate, selectionToSparse } from './wire-decode.ts';
