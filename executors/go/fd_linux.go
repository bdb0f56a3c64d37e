package runwarm

import "syscall"

// dup2 via dup3: linux/arm64 and linux/riscv64 have no dup2 system call.
func dup2(oldfd, newfd int) error {
	if oldfd == newfd {
		return nil
	}
	return syscall.Dup3(oldfd, newfd, 0)
}
