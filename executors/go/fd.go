//go:build unix

package runwarm

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// The fd move happens once per process: in init when the process runs as an executor, else in
// Start.
var (
	takeOverOnce sync.Once
	protoIn      *os.File
	protoOut     *os.File
	takeOverErr  error
	// The *os.Files the os package made for fds 0 and 1. Collected, their finalizers would close
	// fds 0 and 1 under the user's feet; and code that kept them still writes user output.
	originalStdio []*os.File
)

func init() {
	// The supervisor sets RUNWARM_PROTOCOL for every executor. Moving the fds here, rather than
	// in Start, also covers output from the main package's init and from main before Start.
	if _, ok := os.LookupEnv("RUNWARM_PROTOCOL"); ok {
		takeOver()
	}
}

func takeOver() (in, out *os.File, err error) {
	takeOverOnce.Do(func() { protoIn, protoOut, takeOverErr = moveStdio() })
	return protoIn, protoOut, takeOverErr
}

// moveStdio keeps private, close-on-exec copies of fds 0 and 1 for the protocol, then points
// fd 1 at the user stdout fd and fd 0 at /dev/null, so that fmt.Print, raw writes to fd 1 and
// child processes all write user output, and nothing the script does reads protocol input.
func moveStdio() (*os.File, *os.File, error) {
	// No fork may copy the private fds between dup and close-on-exec.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	// Checked before the dups below, which could otherwise take the number of a closed user fd
	// and pass the check themselves.
	userFd := userStdoutFd()
	inFd, err := dupCloexec(0)
	if err != nil {
		return nil, nil, fmt.Errorf("keeping the protocol input (dup of fd 0): %w", err)
	}
	outFd, err := dupCloexec(1)
	if err != nil {
		return nil, nil, fmt.Errorf("keeping the protocol output (dup of fd 1): %w", err)
	}
	if err := dup2(userFd, 1); err != nil {
		return nil, nil, fmt.Errorf("moving fd 1 to user stdout: %w", err)
	}
	null, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err == nil {
		err = dup2(null, 0)
		syscall.Close(null)
	}
	if err != nil {
		// Only a script that reads stdin is affected; serving goes on.
		fmt.Fprintf(os.Stderr, "runwarm: fd 0 stays the protocol input: %v\n", err)
	}
	// Fresh *os.Files, because the os package's own may have registered the old pipes with the
	// poller when they were non-blocking.
	originalStdio = append(originalStdio, os.Stdin, os.Stdout)
	os.Stdin = os.NewFile(0, "/dev/stdin")
	os.Stdout = os.NewFile(1, "/dev/stdout")
	return os.NewFile(uintptr(inFd), "runwarm-protocol-in"), os.NewFile(uintptr(outFd), "runwarm-protocol-out"), nil
}

// userStdoutFd is the fd named in RUNWARM_STDOUT_FD if it is open, else stderr: user output must
// never reach the protocol channel.
func userStdoutFd() int {
	named, ok := os.LookupEnv("RUNWARM_STDOUT_FD")
	if !ok {
		return 2
	}
	fd, err := strconv.Atoi(named)
	var st syscall.Stat_t
	if err != nil || fd < 2 || syscall.Fstat(fd, &st) != nil {
		fmt.Fprintf(os.Stderr, "runwarm: RUNWARM_STDOUT_FD=%q is not an open fd; user stdout goes to stderr\n", named)
		return 2
	}
	if fd > 2 {
		// Children get user stdout as their fd 1; a stray inherited copy would only keep the
		// pipe open after the executor is gone.
		syscall.CloseOnExec(fd)
	}
	return fd
}

func dupCloexec(fd int) (int, error) {
	nfd, err := syscall.Dup(fd)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(nfd)
	return nfd, nil
}

// run is Start's body: it serves reg on the protocol fds and exits the process.
func run(reg *registry) {
	in, out, err := takeOver()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runwarm: %v\n", err)
		os.Exit(1)
	}
	if reg.invalid != nil {
		// Said at once too, for whoever runs the binary by hand.
		fmt.Fprintf(os.Stderr, "runwarm: %s\n", reg.invalid.Message)
	}
	newExecutor(in, out, reg).serve()
	os.Exit(0)
}
