/* LD_PRELOAD module for hot_path_allocs.sh: counts calls to malloc, calloc
 * and realloc (what the library and GnuTLS's record code use) and, at
 * exit, writes "malloc calloc realloc" to the file named by
 * ALLOC_COUNT_FILE. The real work is glibc's (__libc_*), so nothing but
 * the counting changes. Not built under the sanitizers, which replace the
 * allocator themselves. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static atomic_ulong n_malloc, n_calloc, n_realloc;

void *malloc(size_t size) {
  atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
  return __libc_realloc(p, size);
}

/* A plain write, no FILE stream: that would allocate while we count. */
__attribute__((destructor)) static void write_counts(void) {
  const char *path = getenv("ALLOC_COUNT_FILE");
  if (!path) return;
  char line[96];
  int len = snprintf(line, sizeof line, "%lu %lu %lu\n", atomic_load(&n_malloc),
                     atomic_load(&n_calloc), atomic_load(&n_realloc));
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  if (len > 0 && write(fd, line, (size_t)len) < 0) len = 0;
  close(fd);
}
