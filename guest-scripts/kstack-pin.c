// SPDX-License-Identifier: GPL-2.0
/*
 * kstack-pin: the cover letter's reproducer on the cgroup v2 hierarchy, with nothing but
 * kernel memory charged to the removed cgroups.
 *
 * Usage: kstack-pin PARENT_DIR N
 *
 * N times: create PARENT_DIR/kstack-pin, move this process into it, start a task there
 * (its kernel stack is charged to the cgroup), move both back to PARENT_DIR and remove
 * the cgroup. The tasks sleep for good, as the reproducer's `sleep 3600` do.
 *
 * Why not the shell loop: v2 has no memory.move_charge_at_immigrate, so every user page a
 * forked shell or an exec'd sleep faults in before it is moved stays charged to the cgroup
 * and keeps it dying on any 5.10 kernel, series or not (how many depends on who the
 * scheduler runs first). Here the task shares this process's memory (CLONE_VM) and runs on
 * a stack faulted in before the loop, and this process touches no new page while inside
 * the cgroup: what a removed cgroup still holds is kernel memory, the series' subject.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TASK_STACK 16384

static void die(const char *what, const char *path)
{
	fprintf(stderr, "kstack-pin: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void move(const char *procs, pid_t pid)
{
	char buf[32];
	int fd, len;

	fd = open(procs, O_WRONLY);
	if (fd < 0)
		die("open", procs);
	len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, len) != len)
		die("write", procs);
	close(fd);
}

static int task(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	char dir[4096], inner[4096 + 32], outer[4096 + 32];
	long i, n;
	char *stacks;
	pid_t pid;

	if (argc != 3 || (n = strtol(argv[2], NULL, 10)) < 1) {
		fprintf(stderr, "usage: %s PARENT_DIR N\n", argv[0]);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/kstack-pin", argv[1]);
	snprintf(inner, sizeof(inner), "%s/cgroup.procs", dir);
	snprintf(outer, sizeof(outer), "%s/cgroup.procs", argv[1]);
	/* faulted in here, outside the cgroups (a malloc+memset may become a calloc that
	 * touches nothing, and each task's first push would then fault a page in its cgroup) */
	stacks = mmap(NULL, n * TASK_STACK, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (stacks == MAP_FAILED)
		die("mmap", "stacks");

	for (i = 0; i < n; i++) {
		if (mkdir(dir, 0755))
			die("mkdir", dir);
		move(inner, getpid());
		pid = clone(task, stacks + (i + 1) * TASK_STACK, CLONE_VM | SIGCHLD, NULL);
		if (pid < 0)
			die("clone in", dir);
		move(outer, getpid());
		move(outer, pid);
		if (rmdir(dir))
			die("rmdir", dir);
	}
	printf("kstack-pin: %ld tasks started and moved out, %ld cgroups removed\n", n, n);
	return 0;
}
