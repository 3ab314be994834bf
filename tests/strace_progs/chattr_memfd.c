// SPDX-License-Identifier: GPL-2.0
/* chattr on a memfd, for `shmemcheck strace` (tests/test_strace.py): FS_IMMUTABLE_FL refuses a
 * writable reopen and fchmod but not pwrite or ftruncate through the descriptor opened before;
 * FS_APPEND_FL refuses ftruncate and MAP_SHARED through it; FS_IOC_GETFLAGS shows the flags
 * (FS_NODUMP_FL too, which stops nothing); clearing restores them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	int fd = memfd_create("chattr", MFD_ALLOW_SEALING);
	int flags = FS_IMMUTABLE_FL;
	char path[64];

	if (fd < 0 || ftruncate(fd, 4096) || ioctl(fd, FS_IOC_SETFLAGS, &flags))
		return 1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (open(path, O_RDWR) >= 0 || fchmod(fd, 0600) == 0)
		return 1;
	if (pwrite(fd, "x", 1, 0) != 1 || ftruncate(fd, 8192))
		return 1;
	flags = FS_APPEND_FL | FS_NODUMP_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) || ftruncate(fd, 0) == 0)
		return 1;
	if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED)
		return 1;
	flags = 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) || flags != (FS_APPEND_FL | FS_NODUMP_FL))
		return 1;
	flags = 0;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) || ftruncate(fd, 0))
		return 1;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) || flags)
		return 1;
	return close(fd);
}
