// SPDX-License-Identifier: GPL-2.0
/* mremap() of memfd mappings, for `shmemcheck strace` (tests/test_strace.py): a shared
 * mapping grown with MREMAP_MAYMOVE (its tail past EOF), shrunk in place, copied with
 * MREMAP_DONTUNMAP and duplicated (old_len 0), then F_SEAL_WRITE while the copies live
 * (EBUSY) and after they are gone. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

int main(void)
{
	int fd = memfd_create("mremap", MFD_ALLOW_SEALING);
	char *a, *b, *c, *d;

	if (fd < 0 || ftruncate(fd, 4096))
		return 1;
	a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED)
		return 1;
	b = mremap(a, 4096, 8192, MREMAP_MAYMOVE);
	if (b == MAP_FAILED)
		return 1;
	b[0] = 1;
	if (mremap(b, 4096, 12288, 0) != MAP_FAILED) /* not at the VMA's end: ENOMEM */
		return 1;
	if (mremap(b, 8192, 4096, 0) != b)
		return 1;
	c = mremap(b, 4096, 4096, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	d = mremap(b, 0, 4096, MREMAP_MAYMOVE);
	if (c == MAP_FAILED || d == MAP_FAILED)
		return 1;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0)
		return 1;
	munmap(b, 4096);
	munmap(c, 4096);
	munmap(d, 4096);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE))
		return 1;
	return close(fd);
}
