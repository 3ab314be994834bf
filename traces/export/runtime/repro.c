// SPDX-License-Identifier: GPL-2.0
/*
 * The runtime of shmemcheck's C reproducers (traces/export/c.py, `export --to c`).
 *
 * Each `//@ section NAME` line starts a section. The exporter copies the sections a
 * trace needs, in this order, around the reproducer's own lines (its header comment,
 * constants and step texts after "head"; main() at the end), and drops the marker
 * lines, this comment and the "standalone" section. A line holding nothing but a
 * comment `@NAME@` is filled in by the exporter:
 *   @ERRNO_CASES@    one `case E...: return "E...";` per errno of model.vocab.ERRNO;
 *   @KVM_CONSTANTS@  the KVM ioctl numbers and capabilities of model.vocab, the
 *                    guest_memfd flags it knows and NEEDS_GUEST_MEMFD;
 *   @RING_RELEASE@   the io_uring release in sys_unpin() when the trace has gup pins.
 * Every function is __maybe_unused: a trace uses only some of each section's helpers.
 *
 * Check this file on its own: gcc -Wall -Wextra -Werror -fsyntax-only repro.c
 */
//@ section head
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#ifndef __maybe_unused
#define __maybe_unused __attribute__((__unused__))
#endif
//@ section standalone
/* not exported: stand-ins for what a reproducer defines (its steps here, the KVM
 * numbers at @KVM_CONSTANTS@), so that this file compiles on its own */
#define NSTEPS 1
#define USES_HUGETLB 0
static const char *const step_text[NSTEPS + 1] = { NULL, "a step" };
#define KVM_CHECK_EXTENSION 0
#define KVM_CAP_GUEST_MEMFD 0
#define KVM_CAP_GUEST_MEMFD_FLAGS 0
#define KVM_CREATE_GUEST_MEMFD 0
#define KVM_SET_USER_MEMORY_REGION2 0
#define GMEM_KNOWN_FLAGS 0ULL
#define NEEDS_GUEST_MEMFD 0
//@ section base

/* what the last mremap() returned, as observed: m itself (resized or moved: its old
 * place is the result, or is gone), or 0 for a new mapping (a duplicate, a
 * MREMAP_DONTUNMAP copy: the source stays mapped); the guest batch reports it */
static __maybe_unused int remap_kept;

#define MAX_FDS 64
#define BAD_FD (1 << 30)	/* a descriptor the trace does not hold: EBADF */

/* the trace's descriptor numbers -> this process's descriptors */
static int fds[MAX_FDS];
static int cur_step, passed, failed;
/* why the current step's failure may be this machine's (a missing feature), or NULL */
static const char *lacking;

struct res {
	long ret;	/* the return value; -1 on failure or signal */
	int err;	/* errno when ret == -1 */
	int sig;	/* the signal that stopped the step, or 0 */
};

static __maybe_unused struct res res_of(long ret)
{
	struct res r = { ret, ret == -1 ? errno : 0, 0 };

	return r;
}

static __maybe_unused int FD(int tfd)
{
	return tfd >= 0 && tfd < MAX_FDS && fds[tfd] >= 0 ? fds[tfd] : BAD_FD;
}

static __maybe_unused const char *errname(int e)
{
	switch (e) {
/* @ERRNO_CASES@ */
	default: return "E?";
	}
}

static __maybe_unused void describe(char *buf, size_t len, struct res r)
{
	if (r.sig == SIGSEGV)
		snprintf(buf, len, "SIGSEGV");
	else if (r.sig == SIGBUS)
		snprintf(buf, len, "SIGBUS");
	else if (r.sig)
		snprintf(buf, len, "signal %d", r.sig);
	else if (r.ret == -1)
		snprintf(buf, len, "-1 %s (errno %d)", errname(r.err), r.err);
	else
		snprintf(buf, len, "%ld", r.ret);
}

static __maybe_unused void finish(int code, const char *why)
{
	int n;

	for (n = cur_step + 1; n <= NSTEPS; n++)
		printf("ok %d %s # SKIP %s\n", n, step_text[n], why);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
		passed, failed, NSTEPS - passed - failed);
	exit(code);
}

/* A capability this machine lacks: the rest is skipped (KSFT_SKIP). */
static __maybe_unused void skip(const char *why)
{
	printf("ok %d %s # SKIP %s\n", cur_step, step_text[cur_step], why);
	finish(KSFT_SKIP, why);
}

/*
 * The file's state a property reads, as the model says it is (-1: not checked): i_size and
 * the mode by fstat(), the seals by F_GET_SEALS, through the trace's descriptor tfd.
 */
struct observe {
	int tfd;
	long long size;
	long seals;
	long mode;
};

/* checked when the current step's outcome is as the trace says (want_after.tfd >= 0) */
static struct observe want_after = { -1, -1, -1, -1 };

static __maybe_unused int observed(const struct observe *w, char *why, size_t len)
{
	struct stat st;
	long seals;

	if (fstat(FD(w->tfd), &st) != 0) {
		snprintf(why, len, "fstat(%d) failed: %s", w->tfd, errname(errno));
		return 0;
	}
	if (w->size >= 0 && (long long)st.st_size != w->size) {
		snprintf(why, len, "i_size is %lld, the trace's model says %lld",
			(long long)st.st_size, w->size);
		return 0;
	}
	if (w->mode >= 0 && (long)(st.st_mode & 0777) != w->mode) {
		snprintf(why, len, "the mode is 0%lo, the trace's model says 0%lo",
			(long)(st.st_mode & 0777), w->mode);
		return 0;
	}
	seals = w->seals >= 0 ? fcntl(FD(w->tfd), F_GET_SEALS) : -1;
	if (w->seals >= 0 && seals != w->seals) {
		snprintf(why, len, "F_GET_SEALS gives %#lx, the trace's model says %#lx",
			seals, w->seals);
		return 0;
	}
	return 1;
}

static __maybe_unused void observe_failed(const char *when, const char *why)
{
	printf("# step %d: %s: %s\n", cur_step, when, why);
	printf("not ok %d %s\n", cur_step, step_text[cur_step]);
	failed++;
	finish(KSFT_FAIL, "the file's state is not as the trace says");
}

/* Before the current step: the file's state is w (else the step fails). */
static __maybe_unused void check_before(struct observe w)
{
	char why[128];

	if (!observed(&w, why, sizeof(why)))
		observe_failed("before the step", why);
}

static __maybe_unused void result(int ok, struct res r, const char *want)
{
	const char *why = lacking;
	char got[64], state[128];

	lacking = NULL;
	if (ok && want_after.tfd >= 0) {
		struct observe w = want_after;

		want_after.tfd = -1;
		if (!observed(&w, state, sizeof(state)))
			observe_failed("after the step", state);
	}
	if (ok) {
		printf("ok %d %s\n", cur_step, step_text[cur_step]);
		passed++;
		return;
	}
	describe(got, sizeof(got), r);
	if (r.ret == -1 && !r.sig && strncmp(want, "-1 ", 3) &&
		USES_HUGETLB && (r.err == ENOMEM || r.err == ENOSPC))
		skip("hugetlbfs: no free huge pages (raise /proc/sys/vm/nr_hugepages)");
	if (r.ret == -1 && !r.sig && strncmp(want, "-1 ", 3) && why)
		skip(why);
	printf("# step %d: the trace says %s, the kernel gave %s\n", cur_step, want, got);
	printf("not ok %d %s\n", cur_step, step_text[cur_step]);
	failed++;
	finish(KSFT_FAIL, "an earlier step failed");
}

/* The step returned `want`. */
static __maybe_unused void mfd_assert_ret(struct res r, long want)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", want);
	result(!r.sig && r.ret == want, r, buf);
}

/* The step succeeded (it made a mapping or a pin). */
static __maybe_unused void mfd_assert_ok(struct res r)
{
	result(!r.sig && r.ret != -1, r, "success");
}

/* The step returned a new descriptor, which the trace calls tfd. */
static __maybe_unused void mfd_assert_fd(struct res r, int tfd)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d (a new fd)", tfd);
	result(!r.sig && r.ret >= 0 && tfd < MAX_FDS, r, buf);
	fds[tfd] = (int)r.ret;
}

/* The step failed with errno `want`. */
static __maybe_unused void mfd_fail_errno(struct res r, int want)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "-1 %s", errname(want));
	result(!r.sig && r.ret == -1 && r.err == want, r, buf);
}
//@ section newfd
/* dup2/dup3's newfd: the descriptor the trace holds at tfd (the kernel closes it), else a
 * free one from tfd up; out of range, tfd itself (the kernel's EBADF). */
static __maybe_unused int NEWFD(int tfd)
{
	int fd = tfd;

	if (tfd < 0 || tfd >= MAX_FDS)
		return tfd;
	if (fds[tfd] >= 0)
		return fds[tfd];
	while (fcntl(fd, F_GETFD) != -1)
		fd++;
	return fd;
}

//@ section signal

/* The step was stopped by signal `want`. */
static __maybe_unused void mfd_fail_signal(struct res r, int want)
{
	result(r.sig == want, r, want == SIGSEGV ? "SIGSEGV" : "SIGBUS");
}
//@ section create

static __maybe_unused struct res sys_memfd_create(const char *name, unsigned int flags)
{
	struct res r = res_of(syscall(SYS_memfd_create, name, flags));

	if (r.ret == -1 && (flags & MFD_HUGETLB) &&
		(r.err == ENOENT || r.err == ENODEV || r.err == ENOSYS))
		skip("hugetlbfs: memfd_create(MFD_HUGETLB) is not supported here");
	return r;
}
//@ section payload

/* n bytes of `unit` repeated (strace's "x"... buffer) */
static __maybe_unused const char *payload(const char *unit, size_t unit_len, size_t n)
{
	static char *buf;
	size_t i;

	free(buf);
	buf = malloc(n + 1);
	if (!buf) {
		perror("malloc");
		exit(KSFT_FAIL);
	}
	for (i = 0; i < n; i++)
		buf[i] = unit_len ? unit[i % unit_len] : 0;
	return buf;
}
//@ section iov

/* the iovec array of a pwritev2() or preadv2(): n entries of lens[k] bytes, for a write
 * units[k] repeated (strace's iov_base), for a read zeroed; kept until the next call */
static __maybe_unused struct iovec *iovecs(int n, const char *const *units,
					   const size_t *unit_lens, const size_t *lens, int write)
{
	static struct iovec *iov;
	static int held;
	int k;
	size_t i;

	for (k = 0; k < held; k++)
		free(iov[k].iov_base);
	free(iov);
	iov = calloc(n ? n : 1, sizeof(*iov));
	if (!iov) {
		perror("calloc");
		exit(KSFT_FAIL);
	}
	for (k = 0; k < n; k++) {
		iov[k].iov_base = calloc(lens[k] + 1, 1);
		if (!iov[k].iov_base) {
			perror("calloc");
			exit(KSFT_FAIL);
		}
		iov[k].iov_len = lens[k];
		for (i = 0; write && unit_lens[k] && i < lens[k]; i++)
			((char *)iov[k].iov_base)[i] = units[k][i % unit_lens[k]];
	}
	held = n;
	return iov;
}
//@ section stat
/* fstat()'s buffer. After a successful call, the st_size and mode the trace shows (-1: not
 * shown) must be the kernel's: else the step fails, and the line before says which differs. */
static struct stat stat_buf;

static __maybe_unused struct res stat_shown(long long size, long mode, struct res r)
{
	if (r.ret != 0 || r.sig)
		return r;
	if (size >= 0 && (long long)stat_buf.st_size != size) {
		printf("# step %d: st_size is %lld, the trace shows %lld\n", cur_step,
			(long long)stat_buf.st_size, size);
		r.ret = -1;
	} else if (mode >= 0 && (long)(stat_buf.st_mode & 0777) != mode) {
		printf("# step %d: the mode is 0%lo, the trace shows 0%lo\n", cur_step,
			(long)(stat_buf.st_mode & 0777), mode);
		r.ret = -1;
	}
	return r;
}
/* FS_IOC_GETFLAGS's int (the kernel writes 32 bits of the cell). After a successful call,
 * the flags the trace shows (-1: an address, not shown) must be the kernel's. The cell is
 * poisoned before each call (out_cell_ptr()), so a call that writes nothing shows. */
static long long out_cell;

static __maybe_unused long long *out_cell_ptr(void)
{
	out_cell = 0x5a5a5a5a5a5a5a5aLL;
	return &out_cell;
}

static __maybe_unused struct res cell_shown(long long shown, struct res r)
{
	if (r.ret != 0 || r.sig || shown < 0)
		return r;
	if ((out_cell & 0xffffffffLL) != shown) {
		printf("# step %d: the flags are %#llx, the trace shows %#llx\n", cur_step,
			out_cell & 0xffffffffLL, shown);
		r.ret = -1;
	}
	return r;
}
//@ section fields
/* After a successful call, each of the five fields the trace shows (-1: not shown) must be
 * what the kernel wrote (got); else the step fails, naming the first that differs. */
static __maybe_unused struct res fields_shown(const char *const name[5],
					      const long long shown[5],
					      const unsigned long long got[5], struct res r)
{
	int i;

	if (r.ret != 0 || r.sig)
		return r;
	for (i = 0; i < 5; i++) {
		if (shown[i] >= 0 && got[i] != (unsigned long long)shown[i]) {
			printf("# step %d: %s is %#llx, the trace shows %#llx\n", cur_step, name[i],
			       got[i], shown[i]);
			r.ret = -1;
			break;
		}
	}
	return r;
}
//@ section fsx
/* FS_IOC_FSGETXATTR's struct fsxattr: five __u32 (fsx_xflags, fsx_extsize, fsx_nextents,
 * fsx_projid, fsx_cowextsize) and 8 bytes of padding. After a successful call, each field the
 * trace shows (-1: not shown) must be the kernel's. The struct is poisoned before each call
 * (out_fsx_ptr()), so a call that writes nothing shows. */
static uint32_t out_fsx[7];

static __maybe_unused uint32_t *out_fsx_ptr(void)
{
	memset(out_fsx, 0x5a, sizeof(out_fsx));
	return out_fsx;
}

static __maybe_unused struct res fsx_shown(long long x, long long e, long long n, long long p,
					   long long c, struct res r)
{
	static const char *const name[5] = { "fsx_xflags", "fsx_extsize", "fsx_nextents",
					     "fsx_projid", "fsx_cowextsize" };
	const long long shown[5] = { x, e, n, p, c };
	unsigned long long got[5];
	int i;

	for (i = 0; i < 5; i++)
		got[i] = out_fsx[i];
	return fields_shown(name, shown, got, r);
}
//@ section fattr
/* file_getattr/file_setattr (v6.17; glibc may not name them): struct file_attr is a __u64
 * fa_xflags and four __u32 (fa_extsize, fa_nextents, fa_projid, fa_cowextsize), 24 bytes
 * (FILE_ATTR_SIZE_VER0). The buffer is a page and a byte, as large as any usize the kernel
 * reads: zero past the struct for file_setattr (copy_struct_from_user() refuses a non-zero
 * tail), poisoned for file_getattr (a field it does not write shows). After a successful
 * file_getattr, each field the trace shows (-1: not shown) must be the kernel's. */
#ifndef SYS_file_getattr
#define SYS_file_getattr 468
#define SYS_file_setattr 469
#endif
static unsigned char fattr_buf[4097];

static __maybe_unused unsigned char *in_fattr(uint64_t x, uint32_t e, uint32_t n, uint32_t p,
					       uint32_t c)
{
	uint32_t w[4] = { e, n, p, c };

	memset(fattr_buf, 0, sizeof(fattr_buf));
	memcpy(fattr_buf, &x, sizeof(x));
	memcpy(fattr_buf + sizeof(x), w, sizeof(w));
	return fattr_buf;
}

static __maybe_unused unsigned char *out_fattr(void)
{
	memset(fattr_buf, 0x5a, sizeof(fattr_buf));
	return fattr_buf;
}

static __maybe_unused struct res fattr_shown(long long x, long long e, long long n, long long p,
					     long long c, struct res r)
{
	static const char *const name[5] = { "fa_xflags", "fa_extsize", "fa_nextents",
					     "fa_projid", "fa_cowextsize" };
	const long long shown[5] = { x, e, n, p, c };
	unsigned long long got[5];
	uint32_t w[4];
	int i;

	memcpy(&got[0], fattr_buf, sizeof(got[0]));
	memcpy(w, fattr_buf + 8, sizeof(w));
	for (i = 1; i < 5; i++)
		got[i] = w[i - 1];
	return fields_shown(name, shown, got, r);
}
//@ section exec
/* execve/execveat (nr) in a child, so the reproducer goes on: the exec's errno, or 0 once the
 * child runs the file (the close-on-exec pipe closes without a word; the new program is then
 * killed). */
static __maybe_unused struct res sys_exec(long nr, long a, long b, long c, long d, long e)
{
	struct res r = { 0, 0, 0 };
	int p[2], err = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return res_of(-1);
	pid = fork();
	if (pid == 0) {
		syscall(nr, a, b, c, d, e);
		err = errno;
		_exit(write(p[1], &err, sizeof(err)) == sizeof(err) ? 0 : 1);
	}
	close(p[1]);
	n = pid < 0 ? -1 : read(p[0], &err, sizeof(err));
	close(p[0]);
	if (pid < 0)
		return res_of(-1);
	if (n <= 0)
		kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (n > 0) {
		r.ret = -1;
		r.err = err;
	}
	return r;
}

/* "/proc/self/fd/N" of the trace's descriptor tfd */
static __maybe_unused const char *proc_fd(int tfd)
{
	static char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", FD(tfd));
	return path;
}
//@ section buffer

/* a scratch buffer of n bytes for read() and pread(): anonymous NORESERVE memory of at
 * most 2^46 bytes (a count of 2^64-1 is the trace's, not an allocation), or one page */
static __maybe_unused char *buffer(size_t n)
{
	static char *buf;
	static size_t len;

	if (buf)
		munmap(buf, len);
	len = n ? (n < (1UL << 46) ? n : (1UL << 46)) : 1;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED) {
		len = 4096;
		buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (buf == MAP_FAILED) {
		perror("mmap");
		exit(KSFT_FAIL);
	}
	return buf;
}
//@ section kvm

/* /dev/kvm and guest_memfd: the structures of <linux/kvm.h> (Linux 6.18),
 * declared here to need libc only */
/* @KVM_CONSTANTS@ */
struct kvm_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};

struct kvm_userspace_memory_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;	/* bytes */
	uint64_t userspace_addr;	/* start of the userspace allocated memory */
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};

_Static_assert(sizeof(struct kvm_create_guest_memfd) == 64, "64 bytes");
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160, "160 bytes");

/* open("/dev/kvm"), as open_kvm_dev_path_or_exit(): no KVM here is a skip */
static __maybe_unused struct res sys_open_kvm(int flags, int need_gmem)
{
	static char why[96];
	struct res r = res_of(open("/dev/kvm", flags));

	if (r.ret == -1) {
		snprintf(why, sizeof(why), "kvm: cannot open /dev/kvm: %s", strerror(r.err));
		lacking = why;
		return r;
	}
	if (need_gmem &&
		ioctl((int)r.ret, KVM_CHECK_EXTENSION, (unsigned long)KVM_CAP_GUEST_MEMFD) <= 0)
		skip("kvm: no KVM_CAP_GUEST_MEMFD");
	return r;
}

/* an ioctl whose argument is a number */
static __maybe_unused struct res sys_ioctl(int fd, unsigned long req, unsigned long arg)
{
	return res_of(ioctl(fd, req, arg));
}

/* KVM_CREATE_GUEST_MEMFD, as __vm_create_guest_memfd(); a creation flag this
 * kernel does not offer (KVM_CAP_GUEST_MEMFD_FLAGS) makes EINVAL a skip */
static __maybe_unused struct res sys_create_guest_memfd(int vm, uint64_t size, uint64_t flags)
{
	struct kvm_create_guest_memfd gmem;
	struct res r;
	long offered;

	memset(&gmem, 0, sizeof(gmem));
	gmem.size = size;
	gmem.flags = flags;
	r = res_of(ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gmem));
	if (r.ret == -1 && r.err == EINVAL) {
		offered = ioctl(vm, KVM_CHECK_EXTENSION,
				(unsigned long)KVM_CAP_GUEST_MEMFD_FLAGS);
		if (offered >= 0 && (flags & GMEM_KNOWN_FLAGS & ~(uint64_t)offered))
			lacking = "kvm: a guest_memfd flag of the trace is not in "
				"KVM_CAP_GUEST_MEMFD_FLAGS here";
	}
	return r;
}

/* KVM_SET_USER_MEMORY_REGION2, as __vm_set_user_memory_region2() */
static __maybe_unused struct res sys_set_memory_region2(int vm, uint32_t slot, uint32_t flags,
	uint64_t guest_phys_addr, uint64_t memory_size, uint64_t userspace_addr,
	uint64_t guest_memfd_offset, uint32_t guest_memfd)
{
	struct kvm_userspace_memory_region2 region;

	memset(&region, 0, sizeof(region));
	region.slot = slot;
	region.flags = flags;
	region.guest_phys_addr = guest_phys_addr;
	region.memory_size = memory_size;
	region.userspace_addr = userspace_addr;
	region.guest_memfd_offset = guest_memfd_offset;
	region.guest_memfd = guest_memfd;
	return res_of(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region));
}
//@ section open

/* open("/proc/self/fd/N"): a new open file description of the trace's fd N */
static __maybe_unused struct res sys_reopen(int tfd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", FD(tfd));
	return res_of(open(path, flags));
}
//@ section close

static __maybe_unused struct res sys_close(int tfd)
{
	struct res r = res_of(close(FD(tfd)));

	if (r.ret == 0)
		fds[tfd] = -1;
	return r;
}
//@ section maps

#define MAX_MAPS 64

/* the trace's mappings m1, m2, ... -> addresses */
static char *maps[MAX_MAPS];

static __maybe_unused struct res sys_mmap(int m, size_t len, int prot, int flags, int fd,
					  unsigned long off)
{
	void *p = (void *)syscall(SYS_mmap, 0UL, len, prot, flags, fd, off);
	struct res r = res_of(p == MAP_FAILED ? -1 : 0);

	if (p != MAP_FAILED && m > 0 && m < MAX_MAPS)
		maps[m] = p;
	return r;
}
//@ section fork

/*
 * fork()'s copy of a mapping (fork_vma): a child keeps its copy of maps[m] as maps[slot] and
 * nothing else the trace made (the other mappings of the file, io_uring rings, dmabufs, every
 * descriptor), then runs the steps that name its mapping when asked (held_step) until this
 * process exits.
 */
static int holder_cmd[MAX_MAPS], holder_res[MAX_MAPS];
/* the generated program's steps a child runs, by number (set by its main()) */
static struct res (*held_step)(int n);

/* unmap every mapping of the file, of an io_uring or a dmabuf, and of /dev/shm but `keep` */
static __maybe_unused void drop_mappings_but(char *keep)
{
	unsigned long lo[256], hi[256];
	char line[512], path[256];
	int n = 0, i;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		_exit(1);
	while (n < 256 && fgets(line, sizeof(line), f)) {
		path[0] = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &lo[n], &hi[n], path) < 2)
			continue;
		if ((char *)lo[n] != keep && (strstr(path, "/memfd:") || strstr(path, "io_uring") ||
		    strstr(path, "dmabuf") || !strncmp(path, "/dev/shm/", 9)))
			n++;
	}
	fclose(f);
	for (i = 0; i < n; i++)
		munmap((void *)lo[i], hi[i] - lo[i]);
}

static __maybe_unused struct res sys_fork_vma(int m, int slot)
{
	struct res r = { 0, 0, 0 };
	int cmd[2], res[2], n;
	pid_t pid;

	if (pipe(cmd) || pipe(res))
		return res_of(-1);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		drop_mappings_but(maps[m]);
		for (n = 3; n < 1024; n++)
			if (n != cmd[0] && n != res[1])
				close(n);
		maps[slot] = maps[m];
		if (write(res[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		while (read(cmd[0], &n, sizeof(n)) == sizeof(n)) {
			r = held_step(n);
			if (write(res[1], &r, sizeof(r)) != sizeof(r))
				break;
		}
		_exit(0);
	}
	close(cmd[0]);
	close(res[1]);
	if (pid < 0 || read(res[0], &r, sizeof(r)) != sizeof(r))
		return res_of(-1);
	holder_cmd[slot] = cmd[1];
	holder_res[slot] = res[0];
	return r;
}

/* step n, which names a mapping (or a pin made through one) the child of fork_vma mN holds */
static __maybe_unused struct res in_child(int slot, int n)
{
	struct res r = { -1, EIO, 0 };

	fflush(stdout);
	if (write(holder_cmd[slot], &n, sizeof(n)) != sizeof(n) ||
	    read(holder_res[slot], &r, sizeof(r)) != sizeof(r))
		printf("# step %d: the fork's child holding m%d is gone\n", n, slot);
	return r;
}
//@ section munmap

static __maybe_unused struct res sys_munmap(int m, size_t off, size_t len)
{
	char *addr = (char *)maps[m] + off;
	struct res r = res_of(munmap(addr, len));

	/* keep the range reserved, so a later access through m faults as unmapped */
	if (r.ret == 0)
		mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	return r;
}
//@ section mremap

/* mremap() of mapping m; the mapping it returns becomes maps[slot], the trace's */
static __maybe_unused struct res sys_mremap(int m, size_t old_len, size_t new_len, int flags,
					    int slot)
{
	/* new_addr: NULL, read with MREMAP_DONTUNMAP */
	void *p = mremap(maps[m], old_len, new_len, flags, NULL);
	struct res r = res_of(p == MAP_FAILED ? -1 : 0);

	if (p == MAP_FAILED)
		return r;
	remap_kept = (p == maps[m] || msync(maps[m], 4096, MS_ASYNC)) ? m : 0;
	if (slot > 0 && slot < MAX_MAPS)
		maps[slot] = p;
	return r;
}
//@ section access

/* A one-byte store or load through mapping m, first in a child so that a
 * SIGSEGV or SIGBUS is observed rather than suffered. */
static __maybe_unused struct res sys_access(int m, long off, int store)
{
	volatile char *p = (volatile char *)maps[m] + off;
	struct res r = { 0, 0, 0 };
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(KSFT_FAIL);
	}
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		if (store)
			*p = 0x5a;
		else
			(void)*p;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("waitpid");
		exit(KSFT_FAIL);
	}
	if (WIFSIGNALED(status)) {
		r.ret = -1;
		r.sig = WTERMSIG(status);
		return r;
	}
	if (store)	/* now known not to fault: the same access here */
		*p = 0x5a;
	else
		(void)*p;
	return r;
}
//@ section memwrite

/* One byte written with pwrite() on /proc/self/mem at mapping m + off: a
 * FOLL_FORCE write, as a debugger's, which may write through a read-only
 * private mapping (into its copy of the page, never the file). */
static __maybe_unused struct res sys_mem_write(int m, long off)
{
	static const char byte = 0x5a;
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	struct res r;

	if (fd < 0) {
		perror("open /proc/self/mem");
		exit(KSFT_FAIL);
	}
	r = res_of(pwrite(fd, &byte, 1, (off_t)((uintptr_t)maps[m] + off)));
	close(fd);
	return r;
}
//@ section vmwrite

/* One byte written with process_vm_writev() from this process to itself
 * at mapping m + off: FOLL_WRITE without FOLL_FORCE, so the mapping must be
 * writable. */
static __maybe_unused struct res sys_vm_write(int m, long off)
{
	static char byte = 0x5a;
	struct iovec local = { &byte, 1 };
	struct iovec remote = { (char *)maps[m] + off, 1 };

	return res_of(process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
}
//@ section splice

/* count bytes (0x79) moved with splice() from a new pipe into fd at off
 * (an explicit offset: the description's f_pos is not used). */
static __maybe_unused struct res sys_splice_write(int fd, long count, long off)
{
	static char bytes[16 * 4096];
	loff_t pos = off;
	struct res r;
	int p[2];

	if (pipe(p)) {
		perror("pipe");
		exit(KSFT_FAIL);
	}
	memset(bytes, 0x79, sizeof(bytes));
	if (count && write(p[1], bytes, count) != count) {
		perror("write to the pipe");
		exit(KSFT_FAIL);
	}
	r = res_of(splice(p[0], NULL, fd, &pos, count, 0));
	close(p[0]);
	close(p[1]);
	return r;
}
//@ section pins

#define MAX_PINS 64
#define PIN_PAGE 4096

/* the trace's pins p1, p2, ...: a pipe holding the page, an io_uring ring, or a dmabuf */
static struct pin {
	int pipe[2];
	int ring;	/* io_uring fd, or 0 for a pipe */
	void *sq, *cq, *sqes;
	size_t sq_len, cq_len, sqes_len;
	char *addr;
	int dmabuf;	/* a udmabuf's dmabuf fd, or 0 */
} pins[MAX_PINS];

static __maybe_unused char *page_of(int m, long off)
{
	return (char *)(((uintptr_t)maps[m] + off) & ~(uintptr_t)(PIN_PAGE - 1));
}

/* dma_write through a udmabuf: one byte stored through a shared mapping of the
 * dmabuf's first page (udmabuf_vm_fault() maps the pinned page of the file) */
static __maybe_unused struct res dmabuf_write(struct pin *pn)
{
	struct res r = { 0, 0, 0 };
	char *p = mmap(NULL, PIN_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, pn->dmabuf, 0);

	if (p == MAP_FAILED)
		return res_of(-1);
	*(volatile char *)p = 0x5a;
	munmap(p, PIN_PAGE);
	return r;
}
//@ section udmabuf

/* udmabuf: ioctl(UDMABUF_CREATE) on /dev/udmabuf; the dmabuf holds the pins */
#define UDMABUF_CREATE 0x40187542
struct udmabuf_create {
	uint32_t memfd, flags;
	uint64_t offset, size;
};

static __maybe_unused struct res sys_udmabuf(int fd, unsigned long long off,
					      unsigned long long size, int p)
{
	struct udmabuf_create c = { (uint32_t)fd, 0, off, size };
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	struct res r;

	if (dev < 0)
		skip("udmabuf: no /dev/udmabuf (CONFIG_UDMABUF)");
	r = res_of(ioctl(dev, UDMABUF_CREATE, &c));
	close(dev);
	if (r.ret == -1)
		return r;
	pins[p].dmabuf = r.ret;
	pins[p].ring = 0;
	r.ret = 0;
	return r;
}
//@ section pin

/* pin: vmsplice() the mapped page into a pipe, which then holds a page reference */
static __maybe_unused struct res sys_pin(int m, long off, int p)
{
	struct iovec iov = { page_of(m, off), PIN_PAGE };
	struct res r;
	int fd[2];

	if (pipe(fd)) {
		perror("pipe");
		exit(KSFT_FAIL);
	}
	r = res_of(syscall(SYS_vmsplice, fd[1], &iov, 1, 0));
	if (r.ret == -1) {
		close(fd[0]);
		close(fd[1]);
		return r;
	}
	pins[p].pipe[0] = fd[0];
	pins[p].pipe[1] = fd[1];
	pins[p].ring = 0;
	r.ret = 0;
	return r;
}
//@ section uring

/* gup_pin: a long-term FOLL_WRITE pin = an io_uring fixed buffer (the
 * structures of <linux/io_uring.h>, declared here to need libc only). */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#define IORING_OFF_SQ_RING 0ULL
#define IORING_OFF_CQ_RING 0x8000000ULL
#define IORING_OFF_SQES 0x10000000ULL
#define IORING_ENTER_GETEVENTS 1
#define IORING_REGISTER_BUFFERS 0
#define IORING_UNREGISTER_BUFFERS 1
#define IORING_OP_READ_FIXED 4

struct uring_sq_off {
	uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
	uint64_t user_addr;
};

struct uring_cq_off {
	uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
	uint64_t user_addr;
};

struct uring_params {
	uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle;
	uint32_t features, wq_fd, resv[3];
	struct uring_sq_off sq_off;
	struct uring_cq_off cq_off;
};

static struct uring_params uring_par[MAX_PINS];

static __maybe_unused void *ring_map(int ring, size_t len, unsigned long long off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, off);

	if (p == MAP_FAILED)
		skip("io_uring: cannot map the rings");
	return p;
}

static __maybe_unused void ring_release(struct pin *pn)
{
	syscall(__NR_io_uring_register, pn->ring, IORING_UNREGISTER_BUFFERS, NULL, 0);
	munmap(pn->sq, pn->sq_len);
	munmap(pn->cq, pn->cq_len);
	munmap(pn->sqes, pn->sqes_len);
	close(pn->ring);
	pn->ring = 0;
}

static __maybe_unused struct res sys_gup_pin(int m, long off, int p)
{
	struct uring_params *par = &uring_par[p];
	struct pin *pn = &pins[p];
	struct iovec iov;
	struct res r;

	memset(par, 0, sizeof(*par));
	pn->ring = syscall(__NR_io_uring_setup, 4, par);
	if (pn->ring < 0)
		skip("io_uring: io_uring_setup() failed (kernel.io_uring_disabled?)");
	pn->sq_len = par->sq_off.array + par->sq_entries * sizeof(uint32_t);
	pn->cq_len = par->cq_off.cqes + par->cq_entries * 16;
	pn->sqes_len = par->sq_entries * 64;
	pn->sq = ring_map(pn->ring, pn->sq_len, IORING_OFF_SQ_RING);
	pn->cq = ring_map(pn->ring, pn->cq_len, IORING_OFF_CQ_RING);
	pn->sqes = ring_map(pn->ring, pn->sqes_len, IORING_OFF_SQES);
	pn->addr = page_of(m, off);
	iov.iov_base = pn->addr;
	iov.iov_len = PIN_PAGE;
	r = res_of(syscall(__NR_io_uring_register, pn->ring, IORING_REGISTER_BUFFERS, &iov, 1));
	if (r.ret == -1) {
		ring_release(pn);
		return r;
	}
	r.ret = 0;
	return r;
}

static __maybe_unused volatile uint32_t *ring_u32(void *base, uint32_t off)
{
	return (volatile uint32_t *)((char *)base + off);
}

/* dma_write: the "device" (an IORING_OP_READ_FIXED from a pipe) writes one
 * byte through the pinned page; no seal is consulted on this path */
static __maybe_unused struct res sys_dma_write(int p)
{
	struct uring_params *par = &uring_par[p];
	struct pin *pn = &pins[p];
	unsigned char sqe[64];
	uint32_t tail, idx, head;
	uint64_t u64;
	uint32_t u32;
	int32_t i32, res;
	char byte = 0x5a;
	struct res r = { 0, 0, 0 };
	int fd[2];

	if (pn->dmabuf > 0)
		return dmabuf_write(pn);
	if (pipe(fd) || write(fd[1], &byte, 1) != 1) {
		perror("pipe");
		exit(KSFT_FAIL);
	}
	memset(sqe, 0, sizeof(sqe));
	sqe[0] = IORING_OP_READ_FIXED;
	i32 = fd[0];
	memcpy(sqe + 4, &i32, 4);
	u64 = (uintptr_t)pn->addr;
	memcpy(sqe + 16, &u64, 8);
	u32 = 1;
	memcpy(sqe + 24, &u32, 4);
	u64 = 1;
	memcpy(sqe + 32, &u64, 8);
	tail = *ring_u32(pn->sq, par->sq_off.tail);
	idx = tail & *ring_u32(pn->sq, par->sq_off.ring_mask);
	memcpy((char *)pn->sqes + idx * 64, sqe, 64);
	*ring_u32(pn->sq, par->sq_off.array + idx * 4) = idx;
	__atomic_store_n(ring_u32(pn->sq, par->sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, pn->ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		perror("io_uring_enter");
		exit(KSFT_FAIL);
	}
	head = *ring_u32(pn->cq, par->cq_off.head);
	if (head == __atomic_load_n(ring_u32(pn->cq, par->cq_off.tail), __ATOMIC_ACQUIRE)) {
		printf("# io_uring: no completion\n");
		exit(KSFT_FAIL);
	}
	idx = head & *ring_u32(pn->cq, par->cq_off.ring_mask);
	memcpy(&res, (char *)pn->cq + par->cq_off.cqes + idx * 16 + 8, 4);
	*ring_u32(pn->cq, par->cq_off.head) = head + 1;
	close(fd[0]);
	close(fd[1]);
	if (res < 0) {
		r.ret = -1;
		r.err = -res;
	}
	return r;
}
//@ section uringop

/* io_uring_write/read/fallocate: one IORING_OP_WRITE (23), IORING_OP_READ (22) or
 * IORING_OP_FALLOCATE (17: sqe->addr is the length, sqe->len the mode) at off on the trace's
 * fd, on a ring of its own; the CQE's result is the step's */
static __maybe_unused struct res sys_uring_op(int op, int tfd, long long off,
					       unsigned long long addr, unsigned int len)
{
	struct uring_params par;
	size_t sq_len, cq_len, sqes_len;
	void *sq, *cq, *sqes;
	unsigned char sqe[64];
	uint32_t tail, idx, head;
	int32_t i32, res;
	uint64_t u64;
	struct res r = { 0, 0, 0 };
	int ring;

	memset(&par, 0, sizeof(par));
	ring = syscall(__NR_io_uring_setup, 4, &par);
	if (ring < 0)
		skip("io_uring: io_uring_setup() failed (kernel.io_uring_disabled?)");
	sq_len = par.sq_off.array + par.sq_entries * sizeof(uint32_t);
	cq_len = par.cq_off.cqes + par.cq_entries * 16;
	sqes_len = par.sq_entries * 64;
	sq = ring_map(ring, sq_len, IORING_OFF_SQ_RING);
	cq = ring_map(ring, cq_len, IORING_OFF_CQ_RING);
	sqes = ring_map(ring, sqes_len, IORING_OFF_SQES);
	memset(sqe, 0, sizeof(sqe));
	sqe[0] = op;
	i32 = FD(tfd);
	memcpy(sqe + 4, &i32, 4);
	u64 = (uint64_t)off;
	memcpy(sqe + 8, &u64, 8);
	memcpy(sqe + 16, &addr, 8);
	memcpy(sqe + 24, &len, 4);
	u64 = 1;
	memcpy(sqe + 32, &u64, 8);
	tail = *ring_u32(sq, par.sq_off.tail);
	idx = tail & *ring_u32(sq, par.sq_off.ring_mask);
	memcpy((char *)sqes + idx * 64, sqe, 64);
	*ring_u32(sq, par.sq_off.array + idx * 4) = idx;
	__atomic_store_n(ring_u32(sq, par.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		perror("io_uring_enter");
		exit(KSFT_FAIL);
	}
	head = *ring_u32(cq, par.cq_off.head);
	if (head == __atomic_load_n(ring_u32(cq, par.cq_off.tail), __ATOMIC_ACQUIRE)) {
		printf("# io_uring: no completion\n");
		exit(KSFT_FAIL);
	}
	idx = head & *ring_u32(cq, par.cq_off.ring_mask);
	memcpy(&res, (char *)cq + par.cq_off.cqes + idx * 16 + 8, 4);
	munmap(sq, sq_len);
	munmap(cq, cq_len);
	munmap(sqes, sqes_len);
	close(ring);
	if (res < 0) {
		r.ret = -1;
		r.err = -res;
	} else {
		r.ret = res;
	}
	return r;
}
//@ section unpin

/* unpin: drain and close the pipe (or unregister the io_uring buffer, or close the dmabuf) */
static __maybe_unused struct res sys_unpin(int p)
{
	struct res r = { 0, 0, 0 };
	struct pin *pn = &pins[p];
	char buf[4096];

/* @RING_RELEASE@ */
	if (pn->dmabuf > 0) {	/* release_udmabuf() unpins with the dmabuf's last reference */
		close(pn->dmabuf);
		pn->dmabuf = 0;
		return r;
	}
	fcntl(pn->pipe[0], F_SETFL, O_NONBLOCK);
	while (read(pn->pipe[0], buf, sizeof(buf)) > 0)
		;
	close(pn->pipe[0]);
	close(pn->pipe[1]);
	return r;
}
//@ section noexec

#define NOEXEC_SYSCTL "/proc/sys/vm/memfd_noexec"

/* Run the trace with vm.memfd_noexec = want: in a new pid namespace of its
 * own when this one has another value (the sysctl is per pid namespace). */
static __maybe_unused void setup_noexec(int want)
{
	int cur = 0, status;
	FILE *f;
	pid_t pid;

	f = fopen(NOEXEC_SYSCTL, "r");
	if (f) {
		if (fscanf(f, "%d", &cur) != 1)
			cur = 0;
		fclose(f);
	} else if (want > 0) {
		skip("no " NOEXEC_SYSCTL " (kernel older than 6.3)");
	}
	if (cur == want)
		return;
	if (unshare(CLONE_NEWPID))
		skip("unshare(CLONE_NEWPID) failed: vm.memfd_noexec cannot be set here");
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(KSFT_FAIL);
	}
	if (pid > 0) {
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
			exit(KSFT_FAIL);
		exit(WEXITSTATUS(status));
	}
	f = fopen(NOEXEC_SYSCTL, "w");
	if (!f || fprintf(f, "%d\n", want) < 0 || fclose(f))
		skip("cannot set vm.memfd_noexec in a child pid namespace");
}
//@ section shm

/* The trace's /dev/shm names (glibc's shm_open()) on a fresh tmpfs in a mount
 * namespace of its own: they meet none of the machine's and vanish with it.
 * The umask is 022, the model's. */
static __maybe_unused void setup_shm(void)
{
	umask(022);
	if (unshare(CLONE_NEWNS))
		skip("unshare(CLONE_NEWNS) failed: a private /dev/shm is needed");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		skip("mount(\"/\", MS_REC | MS_PRIVATE) failed: a private /dev/shm is needed");
	mkdir("/dev/shm", 01777);
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
		skip("cannot mount a tmpfs on /dev/shm");
}
