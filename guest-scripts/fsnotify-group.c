// SPDX-License-Identifier: GPL-2.0
/*
 * inotify-pin: keep an inotify instance alive after the memory cgroup it
 * was created in has been left by every task, so that the cgroup can be
 * removed while the instance still exists.
 *
 * Usage: inotify-pin CGROUP_DIR [WATCH_DIR]
 *
 *   main (stays where it was started, outside CGROUP_DIR)
 *    `- creator: moves itself into CGROUP_DIR
 *        `- maker: forked inside CGROUP_DIR (so its kernel stack is
 *                  charged there), creates the inotify instance, adds a
 *                  watch on WATCH_DIR (default /tmp), passes the fd to
 *                  main over a unix socket (SCM_RIGHTS) and exits.
 *
 * main reaps both, so that no task of CGROUP_DIR is left and the kernel
 * stacks of the tasks that lived there are freed, then prints
 * "READY <pid>" and waits for SIGUSR1. Meanwhile the caller removes
 * CGROUP_DIR and counts the memory cgroups. On SIGUSR1 main reads the
 * pending events (printing "EVENTS <n>": the instance must still work),
 * closes the fd, prints "CLOSED" and exits.
 *
 * On a kernel where an fsnotify group pins the memcg of its creator, the
 * removed cgroup stays dying until the fd is closed.
 *
 * Built static for the guest's arch by the harness (scenario inotify-pin).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "inotify-pin: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void enter_cgroup(const char *dir)
{
	char path[4096], pid[32];
	int fd, len;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		die(path);
	len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (write(fd, pid, len) != len)
		die("write cgroup.procs");
	close(fd);
}

/* One byte of data carrying one file descriptor (SCM_RIGHTS): the same for both ends. */
struct fd_message {
	char byte;
	struct iovec iov;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
};

static struct cmsghdr *fd_message_init(struct fd_message *m)
{
	memset(m, 0, sizeof(*m));
	m->byte = 'f';
	m->iov.iov_base = &m->byte;
	m->iov.iov_len = 1;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	m->msg.msg_control = m->u.buf;
	m->msg.msg_controllen = sizeof(m->u.buf);
	return CMSG_FIRSTHDR(&m->msg);
}

static void send_fd(int sock, int fd)
{
	struct fd_message m;
	struct cmsghdr *cmsg = fd_message_init(&m);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	if (sendmsg(sock, &m.msg, 0) != 1)
		die("sendmsg");
}

static int recv_fd(int sock)
{
	struct fd_message m;
	struct cmsghdr *cmsg;
	int fd;

	fd_message_init(&m);
	if (recvmsg(sock, &m.msg, 0) != 1)
		die("recvmsg");
	cmsg = CMSG_FIRSTHDR(&m.msg);
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) {
		fprintf(stderr, "inotify-pin: no fd received\n");
		exit(1);
	}
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

static int wait_ok(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void maker(int sock, const char *watch)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (fd < 0)
		die("inotify_init1");
	if (inotify_add_watch(fd, watch, IN_CREATE | IN_DELETE) < 0)
		die("inotify_add_watch");
	send_fd(sock, fd);
	_exit(0);
}

static void creator(int sock, const char *cgroup, const char *watch)
{
	pid_t pid;

	enter_cgroup(cgroup);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		maker(sock, watch);
	_exit(wait_ok(pid) ? 0 : 1);
}

int main(int argc, char **argv)
{
	const char *watch = argc > 2 ? argv[2] : "/tmp";
	char buf[65536];
	int sv[2], fd, events = 0;
	sigset_t set;
	ssize_t len;
	pid_t pid;
	int sig;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CGROUP_DIR [WATCH_DIR]\n", argv[0]);
		return 2;
	}

	/* Block SIGUSR1 before anything, so that an early signal waits. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		die("socketpair");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		creator(sv[1], argv[1], watch);
	}
	close(sv[1]);
	fd = recv_fd(sv[0]);
	close(sv[0]);
	if (!wait_ok(pid)) {
		fprintf(stderr, "inotify-pin: creator failed\n");
		return 1;
	}

	printf("READY %d\n", (int)getpid());
	fflush(stdout);

	if (sigwait(&set, &sig))
		die("sigwait");

	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (p < buf + len) {
			struct inotify_event *ev = (struct inotify_event *)p;

			events++;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (len < 0 && errno != EAGAIN)
		die("read");
	printf("EVENTS %d\n", events);
	close(fd);
	printf("CLOSED\n");
	fflush(stdout);
	return 0;
}
