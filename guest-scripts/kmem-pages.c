// SPDX-License-Identifier: GPL-2.0
/*
 * kmem-pages: kernel pages charged to a memory cgroup that outlive their
 * task's membership, freed the way the 5.10 review worried about.
 *
 * Usage: kmem-pages pgtables|pipes|forks CGROUP_DIR OUTER_DIR N
 *        kmem-pages kpagecgroup CGROUP_DIR...
 *
 * The process moves itself into CGROUP_DIR and makes N kmem pages there:
 *   pgtables: an anonymous mapping of N x 2 MiB (2 MiB aligned), one byte
 *             touched in each 2 MiB, so that each touch allocates a page
 *             table page (__GFP_ACCOUNT); freed by munmap, which on x86
 *             gives them back through the mmu_gather batch and release_pages;
 *   pipes:    N pipe buffer pages (__GFP_ACCOUNT), 16 per pipe, each page
 *             tee()d into a second pipe so that it has two references; freed
 *             when both pipes are closed.
 * It then moves itself to OUTER_DIR (with move_charge_at_immigrate its user
 * pages go along; kernel pages stay charged where they were made), prints
 * "READY", and waits for SIGUSR1: then it frees the pages, prints "FREED
 * <n> us" (how long the munmap() or the closes took) and exits. Meanwhile the caller removes CGROUP_DIR: on a kernel whose kmem
 * pages pin their memcg it stays dying until the pages are freed.
 *
 * forks: the charge-failure path instead. In CGROUP_DIR (which has a kmem
 * limit) it forks children that wait, until fork fails or N are running;
 * prints "FORKS <n> <errno name>", kills and reaps them, moves to OUTER_DIR
 * and exits: everything the children were charged must be uncharged.
 *
 * kpagecgroup: one read of all of /proc/kpagecgroup (the memory cgroup inode
 * of every page frame, as page_cgroup_ino() finds it: for a kmem page, the
 * nearest online memcg of its obj_cgroup); prints "PAGES <n>" per directory,
 * the frames whose inode is that directory's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPAN (2UL << 20)	/* what one page table page maps (4 KiB pages) */
#define PIPE_PAGES 16		/* a pipe's default capacity */

static void die(const char *what)
{
	fprintf(stderr, "kmem-pages: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void move(const char *dir)
{
	char path[4096], buf[32];
	int fd, len;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		die(path);
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, len) != len)
		die(path);
	close(fd);
}

static int forks(const char *cgroup, const char *outer, long n)
{
	pid_t *pids = calloc(n, sizeof(*pids));
	int err = 0;
	long i;

	if (!pids)
		die("calloc");
	move(cgroup);
	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			err = errno;
			break;
		}
		if (pids[i] == 0) {
			pause();
			_exit(0);
		}
	}
	printf("FORKS %ld %s\n", i, err == ENOMEM ? "ENOMEM" : err ? strerror(err) : "none");
	fflush(stdout);
	for (long j = 0; j < i; j++)
		kill(pids[j], SIGKILL);
	for (long j = 0; j < i; j++)
		waitpid(pids[j], NULL, 0);
	move(outer);
	return 0;
}

static int kpagecgroup(int n, char **dirs)
{
	static uint64_t buf[8192];
	unsigned long inos[16], pages[16] = { 0 };
	struct stat st;
	ssize_t len;
	int fd;

	if (n > 16)
		n = 16;
	for (int i = 0; i < n; i++) {
		if (stat(dirs[i], &st))
			die(dirs[i]);
		inos[i] = st.st_ino;
	}
	fd = open("/proc/kpagecgroup", O_RDONLY);
	if (fd < 0)
		die("/proc/kpagecgroup");
	while ((len = read(fd, buf, sizeof(buf))) > 0)
		for (size_t k = 0; k < len / sizeof(buf[0]); k++)
			for (int i = 0; i < n; i++)
				pages[i] += buf[k] == inos[i];
	if (len < 0)
		die("read /proc/kpagecgroup");
	close(fd);
	for (int i = 0; i < n; i++)
		printf("PAGES %lu %s\n", pages[i], dirs[i]);
	return 0;
}

int main(int argc, char **argv)
{
	static char chunk[PIPE_PAGES * 4096];
	int pgtables, *fds = NULL;
	long n, pipes = 0;
	char *map = NULL;
	struct timespec t0, t1;
	sigset_t set;
	int sig;

	if (argc > 2 && !strcmp(argv[1], "kpagecgroup"))
		return kpagecgroup(argc - 2, argv + 2);
	if (argc != 5 || (strcmp(argv[1], "pgtables") && strcmp(argv[1], "pipes") && strcmp(argv[1], "forks")) ||
	    (n = strtol(argv[4], NULL, 10)) < 1) {
		fprintf(stderr, "usage: %s pgtables|pipes|forks CGROUP_DIR OUTER_DIR N\n"
			"       %s kpagecgroup CGROUP_DIR...\n", argv[0], argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "forks"))
		return forks(argv[2], argv[3], n);
	pgtables = !strcmp(argv[1], "pgtables");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	memset(chunk, 'k', sizeof(chunk));	/* faulted in here, before the cgroup */
	if (!pgtables) {
		pipes = (n + PIPE_PAGES - 1) / PIPE_PAGES;
		fds = calloc(pipes * 4, sizeof(*fds));
		if (!fds)
			die("calloc");
	}

	move(argv[2]);
	if (pgtables) {
		char *raw = mmap(NULL, (n + 1) * SPAN, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (raw == MAP_FAILED)
			die("mmap");
		map = (char *)(((uintptr_t)raw + SPAN - 1) & ~(SPAN - 1));
		for (long i = 0; i < n; i++)
			map[i * SPAN] = 1;
	} else {
		for (long i = 0; i < pipes; i++) {
			int *p = fds + 4 * i;

			if (pipe(p) || pipe(p + 2))
				die("pipe");
			if (write(p[1], chunk, sizeof(chunk)) != sizeof(chunk))
				die("write");
			if (tee(p[0], p[3], sizeof(chunk), 0) != sizeof(chunk))
				die("tee");
		}
	}
	move(argv[3]);
	printf("READY %ld %s\n", pgtables ? n : pipes * PIPE_PAGES, argv[1]);
	fflush(stdout);

	if (sigwait(&set, &sig))
		die("sigwait");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pgtables) {
		if (munmap(map, n * SPAN))
			die("munmap");
	} else {
		for (long i = 0; i < pipes * 4; i++)
			close(fds[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("FREED %ld us\n", (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000);
	fflush(stdout);
	return 0;
}
