// SPDX-License-Identifier: GPL-2.0
/*
 * The guest runtime of shmemcheck's batch program (traces/guest.py): one static /init that
 * runs many traces under QEMU, each in a forked child, and prints KTAP on the console.
 *
 * It takes the place of repro.c's "base" section (and of its "signal" section): the other
 * sections of repro.c (the steps' helpers) are copied unchanged, and each step is the same C
 * call as in a reproducer (traces/export/c.py). Where a reproducer asserts the trace's outcome
 * and stops, a step here reports the outcome it observed, in numbers, and goes on, as the
 * host's executor (traces/kernel.py) does; the comparison is made in Python, by the host's code.
 * Line format (one per step, indented as a KTAP subtest):
 *   ok N step N # outcome R <ret> | E <errno> | S <signo> | N m<k> | N p<k>
 * then the file's state after the step (observe_file()):
 *   # obs <seals>|E<errno>|- <size>|- <mode, octal>|-
 * A capability the guest lacks ends the trace with `# SKIP <reason>` lines.
 *
 * Each `//@ section NAME` line starts a section, as in repro.c; @ERRNO_CASES@ as there.
 * Check this file on its own: gcc -Wall -Wextra -Werror -fsyntax-only guest.c
 */
//@ section standalone
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4
#ifndef __maybe_unused
#define __maybe_unused __attribute__((__unused__))
#endif
//@ section base

#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>

#define MAX_FDS 64
#define BAD_FD (1 << 30)	/* a descriptor the trace does not hold: EBADF */
#define OBS_RET 0	/* the step returns a number */
#define OBS_FD 1	/* the step returns a new descriptor of the trace */
#define OBS_MAP 2	/* the step makes mapping m<k> */
#define OBS_PIN 3	/* the step makes pin p<k> */
#define OBS_FILE 4	/* the step returns a new descriptor of the trace's file (memfd_create) */
#define OBS_NEWFD 5	/* dup2/dup3: the new descriptor is the trace's newfd (cur_newfd) */
#define OBS_REMAP 6	/* mremap: mapping m<k> itself, or a new one (remap_kept) */

/* the trace's descriptor numbers -> this process's descriptors */
static int fds[MAX_FDS];
static int cur_step, cur_nsteps, failed;
/* repro.c's sys_mremap(): the mapping the last mremap() returned (m, or 0: a new one) */
static int remap_kept;
/* traces that passed, were not ok, were skipped (the parent's counts, for the totals) */
static int n_pass, n_not_ok, n_skip;
/* per trace: it uses hugetlbfs / guest_memfd (NEEDS_GUEST_MEMFD) */
static int cur_uses_hugetlb, cur_needs_gmem;
/* mappings and pins made so far (the host names them m1, m2, ... in that order) */
static int n_maps, n_pins;
/* dup2/dup3's newfd, as the trace numbers it (OBS_NEWFD) */
static int cur_newfd;
/* why the current step's failure may be this machine's (a missing feature), or NULL */
static const char *lacking;
/* a descriptor of the trace's file (as the host's executor keeps one), or -1 */
static int file_fd = -1;

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

/* A capability the guest lacks: the rest of the trace is skipped. */
static __maybe_unused void skip(const char *why)
{
	int n;

	for (n = cur_step; n <= cur_nsteps; n++)
		printf("    ok %d step %d # SKIP %s\n", n, n, why);
	exit(KSFT_SKIP);
}

/* The lowest trace descriptor number not in use (as the host's executor numbers them). */
static __maybe_unused int free_tfd(void)
{
	int n;

	for (n = 0; n < MAX_FDS; n++)
		if (fds[n] < 0)
			return n;
	return -1;
}

/*
 * The file's observable state after a step, as the host's executor reports it (F_GET_SEALS,
 * st_size, st_mode & 07777): "    # obs <seals> <size> <mode>", seals as a number or E<errno>;
 * "    # obs - - -" before the file exists.
 */
static __maybe_unused void observe_file(void)
{
	struct stat st;
	long seals;

	if (file_fd < 0) {
		printf("    # obs - - -\n");
		return;
	}
	seals = fcntl(file_fd, F_GET_SEALS);
	if (seals == -1)
		printf("    # obs E%d", errno);
	else
		printf("    # obs %ld", seals);
	if (fstat(file_fd, &st) == 0)
		printf(" %lld %o\n", (long long)st.st_size, (unsigned int)(st.st_mode & 07777));
	else
		printf(" - -\n");
}

/*
 * Report the step's observed outcome; `want` is the trace's outcome in the same words,
 * for the KTAP ok / not ok (the verdict is made on the host).
 */
static __maybe_unused void observe(struct res r, int kind, const char *want)
{
	char got[48];
	const char *why = lacking;
	int t;

	lacking = NULL;
	if (r.sig) {
		snprintf(got, sizeof(got), "S %d", r.sig);
	} else if (r.ret == -1) {
		snprintf(got, sizeof(got), "E %d", r.err);
	} else if (kind == OBS_NEWFD && cur_newfd >= 0 && cur_newfd < MAX_FDS) {
		fds[cur_newfd] = (int)r.ret;
		snprintf(got, sizeof(got), "R %d", cur_newfd);
	} else if (kind == OBS_FD || kind == OBS_FILE || kind == OBS_NEWFD) {
		if (kind == OBS_FILE && file_fd < 0)
			file_fd = fcntl((int)r.ret, F_DUPFD, 900);
		/* the trace's own number for it when that is free, as the host's executor
		 * numbers it (traces/kernel.py new_fd), else the lowest free one */
		if (sscanf(want, "R %d", &t) != 1 || t < 0 || t >= MAX_FDS || fds[t] >= 0)
			t = free_tfd();
		if (t < 0) {
			printf("# step %d: more than %d descriptors\n", cur_step, MAX_FDS);
			exit(KSFT_FAIL);
		}
		fds[t] = (int)r.ret;
		snprintf(got, sizeof(got), "R %d", t);
	} else if (kind == OBS_MAP || (kind == OBS_REMAP && !remap_kept)) {
		snprintf(got, sizeof(got), "N m%d", ++n_maps);
	} else if (kind == OBS_REMAP) {
		snprintf(got, sizeof(got), "N m%d", remap_kept);
	} else if (kind == OBS_PIN) {
		snprintf(got, sizeof(got), "N p%d", ++n_pins);
	} else {
		snprintf(got, sizeof(got), "R %ld", r.ret);
	}
	if (strcmp(got, want) && want[0] != 'E' && r.ret == -1 && !r.sig) {
		if (cur_uses_hugetlb && (r.err == ENOMEM || r.err == ENOSPC))
			skip("hugetlbfs: no free huge pages in the guest (hugepages=)");
		if (why)
			skip(why);
	}
	if (strcmp(got, want))
		failed++;
	printf("    %sok %d step %d # outcome %s\n", strcmp(got, want) ? "not " : "",
		cur_step, cur_step, got);
	observe_file();
}

/*
 * /proc for /proc/self/fd and vm.memfd_noexec, /dev for the console. The results go to the
 * second serial port (ttyS1), where no kernel message can cut into a line; the console
 * (ttyS0) if there is none.
 */
static __maybe_unused void guest_setup(void)
{
	struct termios t;
	int fd;

	mkdir("/proc", 0555);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	if (fcntl(1, F_GETFD) == -1) {
		fd = open("/dev/console", O_RDWR);
		while (fd >= 0 && fd < 2)
			fd = dup(fd);
	}
	fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		if (tcgetattr(fd, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(fd, TCSANOW, &t);
		}
		dup2(fd, 1);
		close(fd);
		printf("# shmemcheck: results on ttyS1\n");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* Run trace k in a forked child with a time limit; print its KTAP result line. */
static __maybe_unused void run_one(int k, const char *name, void (*fn)(void), int nsteps, unsigned int limit)
{
	int status, i;
	pid_t pid;

	printf("    KTAP version 1\n    # Subtest: %s\n    1..%d\n", name, nsteps);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("not ok %d %s # fork failed\n", k, name);
		n_not_ok++;
		return;
	}
	if (pid == 0) {
		for (i = 0; i < MAX_FDS; i++)
			fds[i] = i < 3 ? i : -1;
		file_fd = -1;
		setpgid(0, 0);
		alarm(limit);
		fn();
		exit(failed ? KSFT_FAIL : KSFT_PASS);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL);	/* the step's forked helpers, if any are left */
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		printf("not ok %d %s # TIMEOUT after %u s\n", k, name, limit);
	else if (WIFSIGNALED(status))
		printf("not ok %d %s # ERROR killed by signal %d\n", k, name, WTERMSIG(status));
	else if (WEXITSTATUS(status) == KSFT_SKIP)
		printf("ok %d %s # SKIP\n", k, name);
	else if (WEXITSTATUS(status) == KSFT_PASS)
		printf("ok %d %s\n", k, name);
	else
		printf("not ok %d %s\n", k, name);
	if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_SKIP)
		n_skip++;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS)
		n_pass++;
	else
		n_not_ok++;
}

static __maybe_unused void guest_done(void)
{
	printf("# shmemcheck: batch done\n");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	exit(0);
}
