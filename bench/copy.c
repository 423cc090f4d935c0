/*
 * The floor for reading a process: one process_vm_readv pass over every
 * private writable mapping of PID, 1 MiB at a time, into one buffer.
 * Prints "SECONDS BYTES".  Used by bench_onepass.sh; not part of heapscan.
 * Note it faults in the target's untouched pages, as any reader that does
 * not consult pagemap would: run it after heapscan's own runs.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>

int main(int argc, char **argv)
{
	const size_t bufsz = 1 << 20;
	unsigned long long total = 0;
	struct timespec a, b;
	char path[64], line[4096], perm[5];
	unsigned long start, end;
	char *buf;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: copy PID\n");
		return 64;
	}
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	f = fopen(path, "r");
	buf = malloc(bufsz);
	if (!f || !buf) {
		perror(path);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &start, &end, perm) != 3 ||
		    perm[0] != 'r' || perm[1] != 'w' || perm[3] != 'p')
			continue;
		for (unsigned long x = start; x < end; x += bufsz) {
			size_t n = end - x < bufsz ? end - x : bufsz;
			struct iovec l = { buf, n }, r = { (void *)x, n };
			ssize_t k = process_vm_readv(atoi(argv[1]), &l, 1, &r, 1, 0);

			if (k > 0)
				total += (unsigned long long)k;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f %llu\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
	       total);
	return 0;
}
