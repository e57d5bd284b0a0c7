// SPDX-License-Identifier: GPL-2.0
/*
 * fsnotify-group: an inotify or fanotify group made in a memory cgroup that
 * no task of it outlives.
 *
 * Usage: fsnotify-group pin inotify|fanotify|socket CGROUP_DIR [WATCH_DIR]
 *        fsnotify-group charge inotify|fanotify PARENT_DIR N
 *
 * pin: keep the group alive after CGROUP_DIR has been left by every task,
 * so that the cgroup can be removed while the group still exists.
 *
 *   main (stays where it was started, outside CGROUP_DIR)
 *    `- creator: moves itself into CGROUP_DIR
 *        `- maker: forked inside CGROUP_DIR (so its kernel stack is
 *                  charged there), creates the group (inotify_init1 or
 *                  fanotify_init), watches WATCH_DIR (default /tmp) for
 *                  files created there, passes the fd to main over a
 *                  unix socket (SCM_RIGHTS) and exits.
 *
 * main reaps both, so that no task of CGROUP_DIR is left and the kernel
 * stacks of the tasks that lived there are freed, then prints
 * "READY <pid>" and waits for SIGUSR1. Meanwhile the caller removes
 * CGROUP_DIR and counts the memory cgroups. On SIGUSR1 main reads the
 * pending events (printing "EVENTS <n>": the instance must still work),
 * closes the fd, prints "CLOSED" and exits.
 *
 * On a kernel where an fsnotify group pins the memcg of its creator, the
 * removed cgroup stays dying until the fd is closed. pin socket makes a UDP
 * socket instead (no events): a socket holds its creator's memcg on cgroup v2
 * (mem_cgroup_sk_alloc), a pin neither series changes.
 *
 * charge: where the group's events are charged (cgroup v1 kmem counters,
 * PARENT_DIR with use_hierarchy and its children x and c, made by the
 * caller). An inotify group made in x watches two files; N events (writes
 * alternating between the files, so that none is merged) must be charged
 * to x while x lives and uncharged when read; after x is removed, to
 * PARENT_DIR. A group made here, in the root cgroup, must not charge c for
 * the N events a task in c generates. Prints "kharness-metric NAME BYTES"
 * lines: the kmem counter's change per event. A fanotify group marks a
 * directory of N files instead, each event a file opened for writing and
 * closed (fanotify merges the events of one file).
 *
 * Built static for the guest's arch by the harness (scenarios inotify-pin,
 * fanotify-pin, fsnotify-charge, fanotify-charge, socket-pin).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "fsnotify-group: %s: %s\n", what, strerror(errno));
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
		fprintf(stderr, "fsnotify-group: no fd received\n");
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

static int fanotify;	/* the group is a fanotify one, else inotify */
static int udp;	/* pin socket: a UDP socket instead of a group (the audit's other pin) */
static const char *const charge_files[] = { "fsnotify-charge-a", "fsnotify-charge-b" };
#define CHARGE_DIR "fsnotify-charge.d"	/* fanotify: a file per event, so that none merges */

static int charge_group(void)
{
	int fd;

	if (fanotify) {
		fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
		if (fd < 0)
			die("fanotify_init");
		if (fanotify_mark(fd, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD,
				  AT_FDCWD, CHARGE_DIR) < 0)
			die("fanotify_mark");
		return fd;
	}
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		die("inotify_init1");
	for (int i = 0; i < 2; i++)
		if (inotify_add_watch(fd, charge_files[i], IN_MODIFY) < 0)
			die("inotify_add_watch");
	return fd;
}

/* fanotify's event file i: opened for writing and closed, one FAN_CLOSE_WRITE */
static void charge_path(char *buf, size_t size, int i)
{
	snprintf(buf, size, CHARGE_DIR "/%d", i);
}

static void maker(int sock, const char *watch)
{
	int fd;

	if (!watch) {
		fd = charge_group();
	} else if (udp) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
	} else if (fanotify) {
		/* a notification group (CAP_SYS_ADMIN): files closed after writing in WATCH_DIR */
		fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
		if (fd < 0)
			die("fanotify_init");
		if (fanotify_mark(fd, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD,
				  AT_FDCWD, watch) < 0)
			die("fanotify_mark");
	} else {
		fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (fd < 0)
			die("inotify_init1");
		if (inotify_add_watch(fd, watch, IN_CREATE | IN_DELETE) < 0)
			die("inotify_add_watch");
	}
	send_fd(sock, fd);
	_exit(0);
}

/* The events queued on the group: each counted, a fanotify event's file closed. */
static int read_events(int fd)
{
	char buf[65536];
	int events = 0;
	ssize_t len;

	/*
	 * A fanotify read opens a file for each event it returns: a buffer of at most 4096 bytes
	 * (170 events) stays below the open-file limit, else the event whose open fails is lost.
	 */
	while ((len = read(fd, buf, fanotify ? 4096 : sizeof(buf))) > 0) {
		char *p = buf;

		while (p < buf + len) {
			if (fanotify) {
				struct fanotify_event_metadata *ev = (void *)p;

				if (ev->fd >= 0)
					close(ev->fd);
				p += ev->event_len;
			} else {
				struct inotify_event *ev = (void *)p;

				p += sizeof(*ev) + ev->len;
			}
			events++;
		}
	}
	if (len < 0 && errno != EAGAIN)
		die("read");
	return events;
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

/* A group made by a task of CGROUP (which then exits), its fd here; watch NULL: charge_group(). */
static int group_made_in(const char *cgroup, const char *watch)
{
	int sv[2], fd;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		die("socketpair");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		creator(sv[1], cgroup, watch);
	}
	close(sv[1]);
	fd = recv_fd(sv[0]);
	close(sv[0]);
	if (!wait_ok(pid)) {
		fprintf(stderr, "fsnotify-group: creator failed\n");
		exit(1);
	}
	return fd;
}

static long kmem(const char *cgroup)
{
	char path[4096];
	long value;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.kmem.usage_in_bytes", cgroup);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%ld", &value) != 1)
		die(path);
	fclose(f);
	return value;
}

/* n IN_MODIFY events from a task in CGROUP (NULL: here): 1-byte writes over what is there */
static void write_events(const char *cgroup, int n)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fds[2];

		if (cgroup)
			enter_cgroup(cgroup);
		if (fanotify) {
			char path[64];

			for (int i = 0; i < n; i++) {
				charge_path(path, sizeof(path), i);
				if ((fds[0] = open(path, O_WRONLY)) < 0)
					die(path);
				close(fds[0]);
			}
			_exit(0);
		}
		for (int i = 0; i < 2; i++)
			if ((fds[i] = open(charge_files[i], O_WRONLY)) < 0)
				die(charge_files[i]);
		for (int i = 0; i < n; i++)
			if (pwrite(fds[i % 2], "x", 1, 0) != 1)
				die("pwrite");
		_exit(0);
	}
	if (!wait_ok(pid)) {
		fprintf(stderr, "fsnotify-group: writer failed\n");
		exit(1);
	}
	usleep(200000);	/* the writer's own task memory is freed after RCU */
}

static void metric(const char *name, long before, long after, int n)
{
	printf("kharness-metric %s %ld\n", name, (after - before) / n);
}

static int charge(const char *parent, int n)
{
	char x[4096], c[4096];
	long k0, k1, k2;
	int fd, events;

	snprintf(x, sizeof(x), "%s/x", parent);
	snprintf(c, sizeof(c), "%s/c", parent);
	for (int i = 0; i < 2; i++) {
		int f = open(charge_files[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (f < 0 || write(f, "x", 1) != 1)
			die(charge_files[i]);
		close(f);
	}
	if (fanotify) {	/* made here, before any group: their inodes are charged to nobody measured */
		char path[64];

		if (mkdir(CHARGE_DIR, 0755) && errno != EEXIST)
			die(CHARGE_DIR);
		for (int i = 0; i < n; i++) {
			int f;

			charge_path(path, sizeof(path), i);
			if ((f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
				die(path);
			close(f);
		}
	}

	fd = group_made_in(x, NULL);
	k0 = kmem(x);
	write_events(NULL, n);
	k1 = kmem(x);
	events = read_events(fd);
	k2 = kmem(x);
	printf("x: kmem %ld -> %ld with %d events queued -> %ld read\n", k0, k1, events, k2);
	metric("x_charged", k0, k1, n);
	metric("x_uncharged", k2, k1, n);

	if (rmdir(x))
		die("rmdir x");
	k0 = kmem(parent);
	write_events(NULL, n);
	k1 = kmem(parent);
	events += read_events(fd);
	k2 = kmem(parent);
	close(fd);
	printf("x removed, parent: kmem %ld -> %ld with events queued -> %ld read\n", k0, k1, k2);
	metric("parent_charged", k0, k1, n);
	metric("parent_uncharged", k2, k1, n);

	fd = charge_group();	/* made here, in the root cgroup */
	k0 = kmem(c);
	write_events(c, n);
	k1 = kmem(c);
	events += read_events(fd);
	close(fd);
	printf("root group, writer in c: c kmem %ld -> %ld\n", k0, k1);
	metric("root_group_child_charged", k0, k1, n);
	printf("EVENTS %d\n", events);
	return events == 3 * n ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *watch = argc > 4 ? argv[4] : "/tmp";
	int fd, events;
	sigset_t set;
	int sig;

	udp = argc > 2 && !strcmp(argv[1], "pin") && !strcmp(argv[2], "socket");
	if (argc < 4 || (strcmp(argv[1], "pin") && strcmp(argv[1], "charge")) ||
	    (strcmp(argv[2], "inotify") && strcmp(argv[2], "fanotify") && !udp) ||
	    (!strcmp(argv[1], "charge") && argc != 5)) {
		fprintf(stderr, "usage: %s pin inotify|fanotify|socket CGROUP_DIR [WATCH_DIR]\n"
			"       %s charge inotify|fanotify PARENT_DIR N\n", argv[0], argv[0]);
		return 2;
	}
	fanotify = !strcmp(argv[2], "fanotify");
	if (!strcmp(argv[1], "charge"))
		return charge(argv[3], atoi(argv[4]));

	/* Block SIGUSR1 before anything, so that an early signal waits. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	fd = group_made_in(argv[3], watch);

	printf("READY %d\n", (int)getpid());
	fflush(stdout);

	if (sigwait(&set, &sig))
		die("sigwait");

	events = udp ? 0 : read_events(fd);
	printf("EVENTS %d\n", events);
	close(fd);
	printf("CLOSED\n");
	fflush(stdout);
	return 0;
}
