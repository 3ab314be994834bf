// SPDX-License-Identifier: GPL-2.0
/* sendfile() and copy_file_range() within a memfd, for `shmemcheck strace`
 * (tests/test_strace.py): strace prints the offsets they write back as `[N] => [M]`. The
 * data of a sendfile landing after where it is read from grows the file ahead of the read
 * (the whole count moves); F_SEAL_GROW then cuts it at the last page boundary below EOF;
 * a NULL offset (the in description's f_pos) is outside the model. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

int main(void)
{
	int fd = memfd_create("sendfile", MFD_ALLOW_SEALING);
	static char buf[4096];
	off_t in = 0, out = 8192;

	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
		return 1;
	if (lseek(fd, 100, SEEK_SET) != 100 || sendfile(fd, fd, &in, 20000) != 20000)
		return 1;
	in = 0;
	if (copy_file_range(fd, &in, fd, &out, 10, 0) != 10)
		return 1;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) || lseek(fd, 16000, SEEK_SET) != 16000)
		return 1;
	in = 0;
	if (sendfile(fd, fd, &in, 8192) != 384 || sendfile(fd, fd, NULL, 1) != 1)
		return 1;
	return close(fd);
}
