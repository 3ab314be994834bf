// SPDX-License-Identifier: GPL-2.0
/*
 * B2-fixed: F_SEAL_FUTURE_WRITE must not break copy-on-write of MAP_PRIVATE
 * mappings (05d351102dbe "mm, memfd: fix COW issue on MAP_PRIVATE and
 * F_SEAL_FUTURE_WRITE mappings").
 *
 * Written by hand: traces/export/c.py has no reproducer for fork(). The steps
 * are those of B2-fixed.trace (and B2-broken.trace):
 *
 *   memfd_create("t", MFD_ALLOW_SEALING) = 3
 *   fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0
 *   mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m1
 *   ftruncate(3, 4096) = 0
 *   store(m1, 0) = 0        the parent writes 22: a private (COW) copy
 *   fork() = 0
 *   store(m1, 0) = 0        the parent writes 33 after the fork
 *
 * and then the child reads its copy of the page. With the fix the child
 * still reads 22 (fork() write-protected the page: the parent's store made
 * a new copy); with the bug (5.1 to 5.4) parent and child share one
 * writable page and the child reads 33. Built with -DEXPECT_BUG (as
 * B2-broken.c does) the expectation is reversed.
 *
 * Exit status: 0 (KSFT_PASS) the kernel behaves as expected, 1 (KSFT_FAIL)
 * it does not.
 *
 * Build: gcc -Wall -Werror -o repro B2-fixed.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 0x409
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x10
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x2
#endif

#ifdef EXPECT_BUG
#define WANT 33	/* the child sees the parent's store: the B2 bug */
#else
#define WANT 22	/* the child keeps its copy-on-write page */
#endif

static int step;

static void mfd_fail(const char *what)
{
	printf("not ok %d %s\n", step, what);
	exit(KSFT_FAIL);
}

static void mfd_ok(const char *what)
{
	printf("ok %d %s\n", step, what);
}

int main(void)
{
	int fd, go[2], status;
	volatile char *p;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..8\n");
	step = 1;
	fd = syscall(SYS_memfd_create, "t", MFD_ALLOW_SEALING);
	if (fd < 0)
		mfd_fail("memfd_create(\"t\", MFD_ALLOW_SEALING) = 3");
	mfd_ok("memfd_create(\"t\", MFD_ALLOW_SEALING) = 3");
	step = 2;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0)
		mfd_fail("fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0");
	mfd_ok("fcntl(3, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) = 0");
	step = 3;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		mfd_fail("mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m1");
	mfd_ok("mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3, 0) = m1");
	step = 4;
	if (ftruncate(fd, 4096) != 0)
		mfd_fail("ftruncate(3, 4096) = 0");
	mfd_ok("ftruncate(3, 4096) = 0");
	step = 5;
	p[0] = 22;
	mfd_ok("store(m1, 0) = 0 # 22");
	step = 6;
	if (pipe(go) != 0)
		mfd_fail("pipe");
	pid = fork();
	if (pid < 0)
		mfd_fail("fork() = 0");
	if (pid == 0) {
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(p[0]);	/* the child's view of the page */
	}
	close(go[0]);
	mfd_ok("fork() = 0");
	step = 7;
	p[0] = 33;
	mfd_ok("store(m1, 0) = 0 # 33, in the parent");
	if (write(go[1], "x", 1) != 1 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status))
		mfd_fail("the child did not report");
	step = 8;
	if (WEXITSTATUS(status) != WANT) {
		printf("# the child reads %d, expected %d\n", WEXITSTATUS(status), WANT);
		mfd_fail("child: load(m1, 0)");
	}
	printf("# the child reads %d\n", WEXITSTATUS(status));
	mfd_ok("child: load(m1, 0)");
	printf("# Totals: pass:8 fail:0 xfail:0 xpass:0 skip:0 error:0\n");
	return KSFT_PASS;
}
