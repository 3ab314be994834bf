// SPDX-License-Identifier: GPL-2.0
/*
 * fexecve() and execve("/proc/self/fd/N") of a memfd, as a program that builds its own
 * executable in memory would: content no binary format takes (ENOEXEC), a description
 * open()ed for writing (ETXTBSY), no x bit (EACCES), F_SEAL_EXEC, and at last a #! script
 * that runs in a child. tests/test_strace.py judges its log.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

extern char **environ;

int main(void)
{
	char *argv[] = { "memfd", NULL };
	char path[64];
	int fd, rw, status;
	pid_t pid;

	fd = memfd_create("exe", MFD_EXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return 1;
	if (fexecve(fd, argv, environ) == 0)
		return 2;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rw = open(path, O_RDWR);
	if (rw < 0 || fexecve(fd, argv, environ) == 0)
		return 3;
	close(rw);
	if (fchmod(fd, 0644) || execve(path, argv, environ) == 0)
		return 4;
	/* a #! script runs: fexecve in a child, which becomes /bin/true */
	if (fchmod(fd, 0755) || ftruncate(fd, 0) || pwrite(fd, "#!/bin/true\n", 12, 0) != 12)
		return 5;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC))
		return 6;
	pid = fork();
	if (pid == 0) {
		fexecve(fd, argv, environ);
		_exit(7);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return 8;
	return fchmod(fd, 0644) == 0 ? 9 : 0;
}
