// SPDX-License-Identifier: GPL-2.0
/*
 * fsnotify-group: an inotify or fanotify group made in a memory cgroup that
 * no task of it outlives.
 *
 * Usage: fsnotify-group pin inotify|fanotify|socket CGROUP_DIR [WATCH_DIR]
 *        fsnotify-group charge inotify|fanotify PARENT_DIR N
 *        fsnotify-group rate inotify|fanotify CGROUP_DIR N
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
 * charge reads the kernel memory of a cgroup once it has settled (v1: its kmem
 * counter; v2: memory.stat's slab_unreclaimable). EVENTS in the environment
 * chooses fanotify's events: close_write (the default), name, unlimited or perm
 * (see enum events).
 *
 * rate: events a second that the task generating them sees, for a group made
 * in CGROUP_DIR (the cost of charging each event through the group).
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
#include <time.h>
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
/*
 * charge, fanotify: which events (EVENTS in the environment). close_write: a file per event
 * opened for writing and closed (fanotify merges the events of one file); name: a file per
 * event unlinked, reported with its name (FAN_REPORT_DFID_NAME: a name event, allocated with
 * the name); unlimited: close_write on a group of FAN_UNLIMITED_QUEUE (its events are
 * allocated __GFP_NOFAIL); perm: FAN_OPEN_PERM, a task per event blocked in open() until the
 * group answers (a permission event, kept until answered).
 */
enum events { CLOSE_WRITE, NAME, UNLIMITED, PERM };
static enum events kind = CLOSE_WRITE;
static int phase;	/* charge: 0 x, 1 x's parent, 2 the root group */
static const char *const charge_files[] = { "fsnotify-charge-a", "fsnotify-charge-b" };
#define CHARGE_DIR "fsnotify-charge.d"	/* fanotify: a file per event, so that none merges */

static int charge_group(void)
{
	unsigned int flags = FAN_CLASS_NOTIF, mask = FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD;
	int fd;

	if (fanotify) {
		if (kind == NAME) {
			flags |= FAN_REPORT_DFID_NAME;
			mask = FAN_DELETE;
		} else if (kind == UNLIMITED) {
			flags |= FAN_UNLIMITED_QUEUE;
		} else if (kind == PERM) {
			flags = FAN_CLASS_CONTENT;
			mask = FAN_OPEN_PERM | FAN_EVENT_ON_CHILD;
		}
		fd = fanotify_init(flags | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
		if (fd < 0)
			die("fanotify_init");
		if (fanotify_mark(fd, FAN_MARK_ADD, mask, AT_FDCWD, CHARGE_DIR) < 0)
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

/* fanotify's event file i (name: a file of its own per phase, unlinked by the event) */
static void charge_path(char *buf, size_t size, int i)
{
	if (kind == NAME)
		snprintf(buf, size, CHARGE_DIR "/%d-%d", phase, i);
	else
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

/*
 * The events queued on the group: each counted, a fanotify event's file closed; a permission
 * event answered FAN_ALLOW when answer, else its fd kept in perm_fds (up to max) for later.
 */
static int perm_fds[1024], nperm;

static void answer(int group, int fd)
{
	struct fanotify_response r = { .fd = fd, .response = FAN_ALLOW };

	if (write(group, &r, sizeof(r)) != sizeof(r))
		die("fanotify response");
	close(fd);
}

static int read_events(int fd, int answer_now)
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

				if (ev->fd >= 0 && (ev->mask & FAN_OPEN_PERM)) {
					if (answer_now || nperm == 1024)
						answer(fd, ev->fd);
					else
						perm_fds[nperm++] = ev->fd;
				} else if (ev->fd >= 0) {
					close(ev->fd);
				}
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

/*
 * The kernel memory charged to CGROUP, in bytes: cgroup v1's kmem counter, else (v2) memory.stat's
 * slab_unreclaimable, where every event is allocated (v2's memory.current moves in batches of
 * pages charged ahead).
 */
static int kmem_counter = -1;	/* v1's kmem counter is there: decided at the first reading */

static long charged_now(const char *cgroup)
{
	char path[4096], key[64];
	long value;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.kmem.usage_in_bytes", cgroup);
	if (kmem_counter < 0)
		kmem_counter = !access(path, F_OK);
	if (kmem_counter) {
		f = fopen(path, "r");
		if (!f || fscanf(f, "%ld", &value) != 1)
			die(path);
		fclose(f);
		return value;
	}
	snprintf(path, sizeof(path), "%s/memory.stat", cgroup);
	f = fopen(path, "r");
	if (!f)
		die(path);
	while (fscanf(f, "%63s %ld", key, &value) == 2)
		if (!strcmp(key, "slab_unreclaimable")) {
			fclose(f);
			return value;
		}
	fprintf(stderr, "fsnotify-group: %s has no slab_unreclaimable\n", path);
	exit(1);
}

/*
 * charged_now() once it has stopped moving: unchanged for 1 s (frees deferred by RCU land
 * meanwhile), on v2 for 2.5 s (longer than the 2 s of its periodic statistics flush), at most
 * 20 s.
 */
static long charged(const char *cgroup)
{
	long last = charged_now(cgroup), now;
	int stable = kmem_counter ? 10 : 25;

	for (int i = 0, same = 0; i < 200 && same < stable; i++) {
		usleep(100000);
		now = charged_now(cgroup);
		same = now == last ? same + 1 : 0;
		last = now;
	}
	return last;
}

/* fanotify perm: n tasks, each blocked in open() of its file until the group answers */
static pid_t openers[1024];

static void open_file(const char *path, int flags)
{
	int f = open(path, flags, 0644);

	if (f < 0)
		die(path);
	close(f);
}

/* n events from tasks in CGROUP (NULL: here); perm: the tasks are left blocked, see reap() */
static void write_events(const char *cgroup, int n)
{
	char path[64];
	pid_t pid;

	if (kind == PERM && fanotify) {
		for (int i = 0; i < n; i++) {
			pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				if (cgroup)
					enter_cgroup(cgroup);
				charge_path(path, sizeof(path), i);
				open_file(path, O_RDONLY);
				_exit(0);
			}
			openers[i] = pid;
		}
		return;
	}
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fds[2];

		if (cgroup)
			enter_cgroup(cgroup);
		if (fanotify) {
			for (int i = 0; i < n; i++) {
				charge_path(path, sizeof(path), i);
				if (kind == NAME) {
					if (unlink(path))
						die(path);
				} else {
					open_file(path, O_WRONLY);
				}
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
}

/* perm: read until all n events are held unanswered (at most 60 s), so that all are queued */
static int hold_perm_events(int fd, int n)
{
	int events = 0;

	for (int i = 0; i < 600 && nperm < n; i++) {
		events += read_events(fd, 0);
		if (nperm < n)
			usleep(100000);
	}
	if (nperm < n) {
		fprintf(stderr, "fsnotify-group: %d of %d permission events arrived\n", nperm, n);
		exit(1);
	}
	return events;
}

/* perm: answer every held event and reap the tasks that waited for it */
static void reap(int fd, int n)
{
	for (int i = 0; i < nperm; i++)
		answer(fd, perm_fds[i]);
	nperm = 0;
	for (int i = 0; i < n; i++)
		if (!wait_ok(openers[i])) {
			fprintf(stderr, "fsnotify-group: an opener failed\n");
			exit(1);
		}
}

/*
 * The files the events are made on, made here before any group (their inodes are charged to no
 * cgroup measured): inotify's two (rate: kept open in rate_fds), fanotify's n a phase.
 */
static int rate_fds[2];

static void prepare_files(int n)
{
	for (int i = 0; i < 2; i++) {
		int f = open(charge_files[i], O_RDWR | O_CREAT | O_TRUNC, 0644);

		if (f < 0 || write(f, "x", 1) != 1)
			die(charge_files[i]);
		rate_fds[i] = f;
	}
	if (fanotify) {
		char path[64];

		if (mkdir(CHARGE_DIR, 0755) && errno != EEXIST)
			die(CHARGE_DIR);
		for (phase = 0; phase < (kind == NAME ? 3 : 1); phase++)
			for (int i = 0; i < n; i++) {
				charge_path(path, sizeof(path), i);
				open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
			}
		phase = 0;
	}
}

static void metric(const char *name, long bytes, int n)
{
	printf("kharness-metric %s %ld\n", name, bytes / n);
}

/*
 * One phase: n events for group FD from tasks in WRITER (NULL: here), the kernel memory of
 * MEASURED before, with the events queued (perm: held unanswered) and once they are read
 * (answered). Returns the events read; *queued and *read the bytes charged per event and
 * uncharged per event.
 */
static int measure(int fd, const char *measured, const char *writer, int n, long *queued,
		   long *read)
{
	long k0, k1, k2;
	int events;

	k0 = charged(measured);
	write_events(writer, n);
	if (kind == PERM && fanotify) {
		events = hold_perm_events(fd, n);
		k1 = charged(measured);
		reap(fd, n);
	} else {
		k1 = charged(measured);
		events = read_events(fd, 1);
	}
	k2 = charged(measured);
	printf("phase %d: %s: %ld -> %ld with %d events queued -> %ld read\n", phase, measured,
	       k0, k1, events, k2);
	*queued = k1 - k0;
	*read = k1 - k2;
	phase++;
	return events;
}

static int charge(const char *parent, int n)
{
	char x[4096], c[4096];
	long q, r;
	int fd, events;

	snprintf(x, sizeof(x), "%s/x", parent);
	snprintf(c, sizeof(c), "%s/c", parent);
	prepare_files(n);
	fd = group_made_in(x, NULL);
	events = measure(fd, x, NULL, n, &q, &r);
	metric("x_charged", q, n);
	metric("x_uncharged", r, n);

	if (rmdir(x))
		die("rmdir x");
	events += measure(fd, parent, NULL, n, &q, &r);
	close(fd);
	metric("parent_charged", q, n);
	metric("parent_uncharged", r, n);

	fd = charge_group();	/* made here, in the root cgroup */
	/*
	 * perm: the openers are tasks of c, blocked while c is measured (their kernel stacks are
	 * c's): they run here instead, and root_group_child_charged is not measured.
	 */
	events += measure(fd, c, kind == PERM && fanotify ? NULL : c, n, &q, &r);
	close(fd);
	if (!(kind == PERM && fanotify))
		metric("root_group_child_charged", q, n);
	printf("EVENTS %d\n", events);
	return events == 3 * n ? 0 : 1;
}

/*
 * rate: the cost of an event to the task that generates it. A group made in CGROUP (so that
 * every event is charged to a memcg of its own, through the group's reference), n events from
 * here in batches of 4000 (the queue read between batches, untimed): events a second.
 */
static int rate(const char *cgroup, int n)
{
	struct timespec t0, t1;
	double seconds = 0;
	int fd, done = 0, events = 0;

	prepare_files(4000);
	fd = group_made_in(cgroup, NULL);
	while (done < n) {
		int batch = n - done < 4000 ? n - done : 4000;
		char path[64];

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (fanotify) {
			for (int i = 0; i < batch; i++) {
				charge_path(path, sizeof(path), i);
				open_file(path, O_WRONLY);
			}
		} else {
			for (int i = 0; i < batch; i++)
				if (pwrite(rate_fds[i % 2], "x", 1, 0) != 1)
					die("pwrite");
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		seconds += (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		events += read_events(fd, 1);
		done += batch;
	}
	close(fd);
	printf("%d events in %.3f s of writing, %d read\n", n, seconds, events);
	printf("kharness-metric events_per_s %ld\n", (long)(n / seconds));
	return events == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *watch = argc > 4 ? argv[4] : "/tmp";
	const char *ev = getenv("EVENTS");
	int fd, events;
	sigset_t set;
	int sig;

	udp = argc > 2 && !strcmp(argv[1], "pin") && !strcmp(argv[2], "socket");
	if (argc < 4 || (strcmp(argv[1], "pin") && strcmp(argv[1], "charge") &&
			 strcmp(argv[1], "rate")) ||
	    (strcmp(argv[2], "inotify") && strcmp(argv[2], "fanotify") && !udp) ||
	    (strcmp(argv[1], "pin") && argc != 5)) {
		fprintf(stderr, "usage: %s pin inotify|fanotify|socket CGROUP_DIR [WATCH_DIR]\n"
			"       %s charge inotify|fanotify PARENT_DIR N\n"
			"       %s rate inotify|fanotify CGROUP_DIR N\n", argv[0], argv[0], argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "rate")) {
		fanotify = !strcmp(argv[2], "fanotify");
		if (atoi(argv[4]) < 1) {
			fprintf(stderr, "fsnotify-group: N=%s: expected a positive count\n", argv[4]);
			return 2;
		}
		return rate(argv[3], atoi(argv[4]));
	}
	fanotify = !strcmp(argv[2], "fanotify");
	if (ev && *ev) {
		if (!strcmp(ev, "name"))
			kind = NAME;
		else if (!strcmp(ev, "unlimited"))
			kind = UNLIMITED;
		else if (!strcmp(ev, "perm"))
			kind = PERM;
		else if (strcmp(ev, "close_write")) {
			fprintf(stderr, "fsnotify-group: EVENTS=%s: expected close_write, name, "
				"unlimited or perm\n", ev);
			return 2;
		}
	}
	if (!strcmp(argv[1], "charge")) {
		int n = atoi(argv[4]);

		if (n < 1 || (kind == PERM && n > 900)) {
			fprintf(stderr, "fsnotify-group: N=%s: expected 1 to %d\n", argv[4],
				kind == PERM ? 900 : 1 << 30);
			return 2;
		}
		return charge(argv[3], n);
	}

	/* Block SIGUSR1 before anything, so that an early signal waits. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	fd = group_made_in(argv[3], watch);

	printf("READY %d\n", (int)getpid());
	fflush(stdout);

	if (sigwait(&set, &sig))
		die("sigwait");

	events = udp ? 0 : read_events(fd, 1);
	printf("EVENTS %d\n", events);
	close(fd);
	printf("CLOSED\n");
	fflush(stdout);
	return 0;
}
