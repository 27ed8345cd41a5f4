package imgmeta

import "errors"

// ErrMalformed reports an image whose structure does not parse: a bad
// signature, a segment or chunk length beyond the data, a PNG CRC that
// does not match, bytes where a JPEG marker must be, or an end before EOI
// or IEND. What was written to w before it is not a valid image.
var ErrMalformed = errors.New("imgmeta: malformed image")
