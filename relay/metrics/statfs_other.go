//go:build !(linux || darwin || freebsd)

package metrics

import "errors"

// filesystemSpace is not implemented here: the series are left out.
func filesystemSpace(string) (free, size uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}
