// SPDX-License-Identifier: GPL-2.0
/*
 * dcache-fill: look up N names that do not exist in DIR, leaving N negative dentries (charged
 * to the caller's memory cgroup as slab), as the kernel selftest
 * test_kmem_basic's alloc_dcache() does (guest-scripts/kmem-high.sh).
 *
 * Usage: dcache-fill DIR N
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[256];
	struct stat st;
	unsigned long i, n;

	if (argc != 3) {
		fprintf(stderr, "usage: dcache-fill DIR N\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s/something-non-existent-with-a-long-name-%64lu-%d",
			 argv[1], i, getpid());
		stat(buf, &st);
	}
	return 0;
}
