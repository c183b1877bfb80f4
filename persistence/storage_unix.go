//go:build unix

package persistence

import "syscall"

// freeSpace is the default Options.FreeSpace: the bytes statfs(2) says
// unprivileged users may still allocate on dir's filesystem. Root could
// use the blocks reserved for it too; the journal does not count on them.
func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
