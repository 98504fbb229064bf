/**
 * Record signatures, sizes and flags of the zip format (PKWARE APPNOTE 6.3), shared by the reader
 * and the writer.
 * @module
 */

/** Compression method 0: the data is stored as is. */
export const STORED = 0;
/** Compression method 8: raw deflate. */
export const DEFLATE = 8;

export const LOCAL_HEADER = 0x04034b50;
export const CENTRAL_HEADER = 0x02014b50;
export const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
export const ZIP64_END_OF_CENTRAL_DIRECTORY = 0x06064b50;
export const ZIP64_LOCATOR = 0x07064b50;
/** Extra-field id of the zip64 sizes and offset. */
export const ZIP64_EXTRA = 0x0001;
/** Extra-field id torch.save uses for its alignment padding ("FB"); readers skip unknown ids. */
export const PADDING_EXTRA = 0x4246;

export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const EOCD_SIZE = 22;
export const ZIP64_EOCD_SIZE = 56;
export const ZIP64_LOCATOR_SIZE = 20;
/** The longest archive comment: the end record lies within this many bytes (plus its own) of the end. */
export const MAX_COMMENT = 0xffff;

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;

/** General-purpose flag bit 0: the member is encrypted. */
export const FLAG_ENCRYPTED = 0x1;
/** General-purpose flag bit 6: strong encryption. */
export const FLAG_STRONG_ENCRYPTION = 0x40;
/** General-purpose flag bit 11: the name is UTF-8 (otherwise code page 437). */
export const FLAG_UTF8 = 0x800;
