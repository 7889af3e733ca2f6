//go:build unix

package osfile

import (
	"io/fs"
	"os"
	"syscall"
)

// Open is os.OpenFile for a regular file: the same flags, permissions and
// errors (*fs.PathError), with close-on-exec set.
func Open(name string, flag int, perm fs.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// Rename is os.Rename without its check that newpath is no folder; rename(2)
// refuses to replace a folder with a file anyway.
func Rename(oldpath, newpath string) error {
	for {
		err := syscall.Rename(oldpath, newpath)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
}
