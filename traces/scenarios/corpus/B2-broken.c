// SPDX-License-Identifier: GPL-2.0
/*
 * B2-broken: the steps of B2-broken.trace, expecting the bug (the child reads
 * the parent's store after fork()): exit 0 only on a kernel with the B2 bug
 * (5.1 to 5.4 before 05d351102dbe). See B2-fixed.c.
 *
 * Build: gcc -Wall -Werror -o repro B2-broken.c
 */
#define EXPECT_BUG 1
#include "B2-fixed.c"
