// SPDX-License-Identifier: GPL-2.0-only
/*
 * A memfd used the way IPC programs use one, for tests/test_strace.py (run under strace -f
 * and judged by `shmemcheck strace`): a sealed buffer handed to a forked receiver that checks
 * F_GET_SEALS before trusting it, read back with preadv() and refusing a vectored append
 * (pwritev2(RWF_APPEND)); an MFD_NOEXEC_SEAL file; dup2 and a /proc/self/fd reopen;
 * a store past the end of a truncated file (SIGBUS, caught); a mapping at an offset.
 * Exits 0 when every call did what the kernel documents, 1 otherwise.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x00000010
#endif

static sigjmp_buf fault;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(fault, 1);
}

static int fail(const char *what)
{
	printf("seal_ipc: %s\n", what);
	return 1;
}

int main(void)
{
	const long page = 4096;
	int fd, fd2, fd3, status;
	char *p;
	pid_t pid;

	fd = syscall(SYS_memfd_create, "seal_ipc", MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, page) < 0)
		return fail("memfd_create/ftruncate");
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	strcpy(p, "hello through the mapping");
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) != -1)  /* EBUSY: a writable mapping */
		return fail("F_SEAL_WRITE with a writable mapping");
	munmap(p, page);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return fail("F_ADD_SEALS");
	{	/* the sealed buffer refuses a vectored append and reads back with preadv() */
		char head[8], rest[32], late[] = "late";
		struct iovec wv = { late, 4 };
		struct iovec rv[2] = { { head, sizeof(head) }, { rest, sizeof(rest) } };

		if (pwritev2(fd, &wv, 1, 0, RWF_APPEND) != -1)
			return fail("pwritev2(RWF_APPEND) on a write-sealed file");
		if (preadv(fd, rv, 2, 0) != sizeof(head) + sizeof(rest))
			return fail("preadv");
	}
	pid = fork();
	if (pid == 0) {  /* the receiver: trust the buffer only if it is sealed */
		int seals = fcntl(fd, F_GET_SEALS);
		int want = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;

		if ((seals & want) != want)
			_exit(1);
		if (mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED)
			_exit(1);  /* EPERM: write-sealed */
		close(fd);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return fail("receiver");
	close(fd);

	/* descriptors: dup2 onto a number, a second open file description via /proc */
	fd = syscall(SYS_memfd_create, "noexec", MFD_NOEXEC_SEAL);
	if (fd < 0 || fcntl(fd, F_GET_SEALS) != F_SEAL_EXEC || fchmod(fd, 0777) != -1)
		return fail("MFD_NOEXEC_SEAL");
	fd2 = dup2(fd, 20);
	if (fd2 != 20 || ftruncate(fd2, page) < 0)
		return fail("dup2");
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		fd3 = open(path, O_RDWR);
	}
	if (fd3 < 0)
		return fail("reopen");
	close(fd2);

	/* a store past the end of the file: SIGBUS */
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd3, 0);
	if (p == MAP_FAILED || ftruncate(fd3, 0) < 0)
		return fail("mmap/ftruncate 0");
	signal(SIGBUS, on_sigbus);
	if (sigsetjmp(fault, 1) == 0) {
		*(volatile char *)p = 1;
		return fail("no SIGBUS");
	}
	munmap(p, page);

	/* a mapping at an offset: judged (it maps the file from page 1) */
	if (ftruncate(fd3, 2 * page) < 0)
		return fail("ftruncate 2 pages");
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd3, page);
	if (p == MAP_FAILED)
		return fail("mmap at an offset");
	munmap(p, page);
	close(fd3);
	close(fd);
	return 0;
}
