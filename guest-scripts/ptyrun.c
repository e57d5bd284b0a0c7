// SPDX-License-Identifier: GPL-2.0
/*
 * ptyrun: run a program with its stdout and stderr on a pseudo-terminal and copy what it
 * writes to our stdout. stdio then line-buffers (a pipe makes it fully buffered), so a
 * selftest's forked children have no pending TAP line to flush at exit(): no duplicated
 * lines, and no pipe or file page charged to (and pinning) the short-lived test cgroups.
 *
 * A test whose workload never ends (e.g. a child throttled for ever) would keep the whole
 * program, and every test after it, from running: with PTYRUN_STALL=N, N seconds without
 * output make ptyrun kill PROGRAM's children (the workloads a cgroup selftest forks into its
 * test cgroups), or PROGRAM itself if it has none, and say so in a "kharness-note" line. The
 * test then fails as a test, and the program goes on to its next test.
 *
 * Usage: ptyrun PROGRAM [ARG...]; exits with PROGRAM's status (128+N if killed by signal N).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static time_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* SIGKILL every process whose parent is pid; how many were killed */
static int kill_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int killed = 0;

	while (d && (e = readdir(d))) {
		char path[300], stat[512], *p;
		int ppid;
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(stat, sizeof(stat), f) ? strrchr(stat, ')') : NULL;
		fclose(f);
		/* "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses */
		if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == pid &&
		    kill(atoi(e->d_name), SIGKILL) == 0)
			killed++;
	}
	if (d)
		closedir(d);
	return killed;
}

int main(int argc, char **argv)
{
	const char *stall_env = getenv("PTYRUN_STALL");
	int stall = stall_env ? atoi(stall_env) : 0;
	char line[160] = "", cur[160] = "";
	size_t len = 0;
	time_t last;
	int m, s, status = 0, done = 0;
	struct termios t;
	char buf[4096];
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: ptyrun PROGRAM [ARG...]\n");
		return 2;
	}
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || !ptsname(m)) {
		perror("ptyrun: pty");
		return 2;
	}
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (s < 0) {
		perror("ptyrun: open slave");
		return 2;
	}
	/* raw output: "\n" stays "\n", no echo */
	if (tcgetattr(s, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(s, TCSANOW, &t);
	}
	pid = fork();
	if (pid < 0) {
		perror("ptyrun: fork");
		return 2;
	}
	if (pid == 0) {
		close(m);
		dup2(s, STDOUT_FILENO);
		dup2(s, STDERR_FILENO);
		close(s);
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	close(s);
	last = now();
	for (;;) {
		struct pollfd p = { .fd = m, .events = POLLIN };
		int r = poll(&p, 1, done ? 200 : 1000);
		ssize_t n;

		if (r > 0) {
			n = read(m, buf, sizeof(buf));
			if (n > 0) {
				last = now();
				for (ssize_t i = 0; i < n; i++) {	/* the last line written, for the note */
					if (buf[i] == '\n' || buf[i] == '\r') {
						if (len) {
							memcpy(line, cur, len);
							line[len] = 0;
						}
						len = 0;
					} else if (len < sizeof(cur) - 1) {
						cur[len++] = buf[i];
					}
				}
				for (ssize_t o = 0; o < n; ) {
					ssize_t w = write(STDOUT_FILENO, buf + o, n - o);
					if (w <= 0)
						return 2;
					o += w;
				}
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (done)	/* EIO: every slave fd closed */
				break;
		} else if (done) {	/* child gone, nothing more to read */
			break;
		}
		if (!done && waitpid(pid, &status, WNOHANG) == pid) {
			done = 1;
		} else if (!done && stall > 0 && now() - last >= stall) {
			int killed = kill_children(pid);

			if (!killed)
				kill(pid, SIGKILL);
			printf("kharness-note %s wrote nothing for %d s after \"%s\": killed %s\n", argv[1],
			       stall, line, killed ? "its children (the running test's workload)" : "it");
			fflush(stdout);
			last = now();
		}
		else if (!done && r != 0)
			usleep(10000);	/* EIO/HUP while the child lives: its descendants closed */
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
