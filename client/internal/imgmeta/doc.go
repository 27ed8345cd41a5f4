// Package imgmeta removes privacy-sensitive metadata from images before
// they are encrypted and sent: where a photo was taken, with what camera,
// by whom, when, and the embedded thumbnails that may show what was
// cropped away. It streams in constant memory and never decodes pixels:
// what it keeps is copied byte for byte, so the image is not recompressed.
//
// # Use
//
//	mt := imgmeta.Sniff(head)           // from the file's first bytes, not its name
//	tmp, _ := os.CreateTemp(dir, "strip-*")
//	stripped, err := imgmeta.Strip(mt, f, tmp)
//	// on error, discard tmp: it holds an unspecified prefix
//
// Strip understands image/jpeg and image/png. Any other media type is
// copied unchanged and reported with stripped = false, so the caller can
// tell the user that metadata was not removed.
//
// # What is removed (protocol/SPEC.md section 12.4)
//
// JPEG: APP1 (Exif, including GPS, camera, dates, thumbnail; and XMP),
// APP13 (IPTC, Photoshop), APP2..APP15 other than an ICC profile (APP2
// "ICC_PROFILE") and the Adobe colour-transform segment (APP14 "Adobe",
// 12 bytes), COM comments, the JFIF thumbnail and any other APP0, fill
// bytes, and anything after EOI (trailers, appended "motion photo" video).
// The Exif orientation, if present and valid, is kept in a minimal Exif
// segment that holds nothing else, so photos do not turn sideways.
//
// PNG: tEXt, zTXt, iTXt (including XMP), eXIf and tIME chunks, and
// anything after IEND. Every chunk's CRC is verified.
//
// # Security
//
//   - Strip removes the metadata containers listed above; it cannot remove
//     what is in the pixels (faces, a street sign, a screen), steganography,
//     or the information in the image's dimensions and compression settings.
//   - Input is untrusted: every length is checked, nothing is decoded, and a
//     structure that does not parse is ErrMalformed. Memory use is bounded
//     (one 64 KiB segment buffer and two 32 KiB I/O buffers) whatever the
//     image size.
//   - Stripping is idempotent: a stripped image strips to itself.
package imgmeta
