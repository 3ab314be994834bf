// SPDX-License-Identifier: GPL-2.0
/*
 * A sealed hugetlbfs buffer passed over a socket (run under strace -f by tests/test_strace.py
 * and judged by `shmemcheck strace`): the sender sizes and fills an MFD_HUGETLB memfd through a
 * two-huge-page mapping, seals it and passes the descriptor with SCM_RIGHTS to a forked
 * receiver, which checks the seals and the size (fstat), maps it read-only, reads it with
 * read() at its description's offset, and is refused a writable mapping.
 *
 * Build: gcc -Wall -Werror -o huge_pass huge_pass.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#define HPAGE (2UL << 20)
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int fail(const char *what)
{
	printf("huge_pass: %s\n", what);
	return 1;
}

static int send_fd(int sock, int fd)
{
	char data = 'f', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &data, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char data, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &data, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int receiver(int sock)
{
	struct stat st;
	char buf[16];
	char *p;
	int fd = recv_fd(sock);

	if (fd < 0)
		return fail("recvmsg");
	if (fcntl(fd, F_GET_SEALS) != SEALS)
		return fail("the buffer is not sealed");
	if (fstat(fd, &st) != 0 || st.st_size != (off_t)(2 * HPAGE))
		return fail("fstat");
	p = mmap(NULL, 2 * HPAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || p[HPAGE] != 'h')
		return fail("read-only mapping");
	if (mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED)
		return fail("a writable mapping of a sealed buffer");
	if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || buf[0] != 'h')
		return fail("read");
	munmap(p, 2 * HPAGE);
	close(fd);
	return 0;
}

int main(void)
{
	int sv[2], fd, status;
	char *p;
	pid_t pid;

	fd = syscall(SYS_memfd_create, "huge", MFD_HUGETLB | MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (fd < 0)
		return fail("memfd_create");
	if (ftruncate(fd, 2 * HPAGE) != 0)
		return fail("ftruncate");
	p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	p[0] = 'h';
	p[HPAGE] = 'h';
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) != -1)
		return fail("F_SEAL_WRITE while mapped");
	munmap(p, 2 * HPAGE);
	if (fcntl(fd, F_ADD_SEALS, SEALS) != 0)
		return fail("F_ADD_SEALS");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return fail("socketpair");
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(receiver(sv[1]));
	}
	close(sv[1]);
	if (send_fd(sv[0], fd) != 0)
		return fail("sendmsg");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return fail("receiver");
	close(fd);
	printf("huge_pass: ok\n");
	return 0;
}
