// SPDX-License-Identifier: GPL-2.0
/*
 * ptyrun: run a program with its stdout and stderr on a pseudo-terminal and copy what it
 * writes to our stdout. stdio then line-buffers (a pipe makes it fully buffered), so a
 * selftest's forked children have no pending TAP line to flush at exit(): no duplicated
 * lines, and no pipe or file page charged to (and pinning) the short-lived test cgroups.
 *
 * Usage: ptyrun PROGRAM [ARG...]; exits with PROGRAM's status (128+N if killed by signal N).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
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
	for (;;) {
		struct pollfd p = { .fd = m, .events = POLLIN };
		int r = poll(&p, 1, done ? 200 : 1000);
		ssize_t n;

		if (r > 0) {
			n = read(m, buf, sizeof(buf));
			if (n > 0) {
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
		if (!done && waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
		else if (!done && r != 0)
			usleep(10000);	/* EIO/HUP while the child lives: its descendants closed */
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
