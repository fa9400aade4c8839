// cudemu.cc — a CUDA emulator for ganc's tests: the runtime calls of cuda_runtime.h (this folder)
// on host memory, and kernel launches run on the CPU with one fiber per CUDA thread.
//
// Why: most of ganc's CI machines have no GPU. With cudemu, the real kernels/*.cu (the files nvcc
// builds, compiled here by the host C++ compiler) and the unchanged GPU tests run in CI, so the
// launchers' grids, the kernels' thread indexing, barriers, shared-memory trees, split-K plans and
// scratch use are all exercised against the CPU twins on every change, not only when a GPU is lent.
//
// How a launch runs: blocks one at a time; inside a block every thread is a fiber that runs until
// it reaches __syncthreads() or returns, then the next thread runs. When all threads have stopped,
// they must all be waiting at the same __syncthreads (file and line) — then they are released into
// the next phase — or all be done.
//
// What it checks besides the results the tests compare:
//   - launch configuration as the CUDA runtime does (block ≤ 1024 threads and (1024, 1024, 64),
//     grid x < 2^31, y and z ≤ 65535, nothing zero): cudaErrorInvalidConfiguration from
//     cudaGetLastError, which the launchers' CUDA_CHECK_LAUNCH turns into an error;
//   - barriers: a thread that returns while others wait at a __syncthreads, or threads waiting at
//     different __syncthreads, stop the program with the kernel's name, block and threads;
//   - order: the threads of a phase run forward, backward or shuffled, and blocks likewise, the
//     choice changing from launch to launch (CUDEMU_ORDER=fwd|rev|shuffle|mix, default mix). A
//     kernel whose result depends on thread or block order — a race on shared or global memory,
//     a missing barrier — then differs from run to run (the tests run reductions twice and compare
//     bits) or from the CPU twin;
//   - memory: every cudaMalloc ends 0..255 bytes before an inaccessible page (a read or write far
//     enough past the end faults at once); the bytes around it on its own pages are poison (the
//     signalling NaN 0x7FA5A5A5: a read just outside poisons results) and are checked after every
//     launch, so a write outside an allocation names the kernel, even one that adds 0 to poison;
//     new allocations and every block's shared memory are poison too (static shared memory by
//     closed pages: poison_shared says how); copies and memsets must lie inside one allocation and
//     go in the direction their kind says;
//   - dynamic shared memory (GANC_LAUNCH_SMEM): poisoned before every block, only the launch's
//     bytes of it count as shared for ldmatrix and cp.async, and a launch asking past 48 KB fails
//     as on a GPU unless cudaFuncSetAttribute raised the kernel's limit first (which refuses past
//     227 KB, or past CUDEMU_SMEM_OPTIN=<bytes>, a device that allows less);
//   - cp.async: the source is read when the copy is issued, the destination holds poison until
//     the thread's wait_group lands the copy (a read before it reads poison), and a destination
//     that changed between issue and landing — a plain store or another copy into it while the
//     copy was in flight, an order a GPU leaves undefined — stops the kernel with a message
//     (landing the copy last would otherwise hide that race);
//   - wgmma (sm_90a, section "warpgroup MMA"): shared-memory descriptors decoded into the ISA's
//     canonical layouts (dynamic shared memory has shared-window addresses, 128 bytes past a
//     1024-byte boundary, so swizzles depend on the address as on a GPU); a warpgroup's threads
//     must agree on the instruction and its operands; accumulators hold poison while in flight
//     and a store into them, or into the shared memory a wgmma in flight reads, stops the kernel;
//     so do a wgmma without wgmma.fence, threads returning with one in flight, and shared memory
//     a cp.async wrote read without the copying thread's fence.proxy.async;
//   - another device: CUDEMU_CC=<cc> reports that compute capability (default 90);
//   - out of memory: CUDEMU_MEM_LIMIT=<bytes> makes cudaMalloc fail past that many bytes in use,
//     so the out-of-memory message can be tested;
//   - stream capture and graphs: while a stream captures, its launches (arguments copied, as a
//     kernel node keeps them), copies and memsets are recorded, not run; a replay runs them in
//     order and reads host sources then; waiting for the device, allocating or freeing inside a
//     capture is refused and invalidates it. So a value a captured step took as an argument,
//     where it should have read device memory, shows as a wrong result on the second replay.
// CUDEMU_PROFILE=1 prints, at exit, how many kernels were launched and those that took the most
// emulated time.
// Streams: every operation runs when it is issued, so work on two streams never overlaps here;
// the order the events and waits between them would enforce on a GPU is not checked (a missing
// cudaStreamWaitEvent shows only on the device).
// What only a GPU shows: whether the wgmma layouts emulated here are the hardware's (test_gpu_mma's
// probe compares them there), a missing fence.proxy.async after plain stores that wgmma reads,
// speed, memory ordering and visibility between threads (a fiber runs to its
// barrier alone, so a missing __syncthreads shows only where order matters — likely with the
// varying orders, not certain), warp-level behaviour, the device's own float rounding (nvcc
// contracts a·b + c into FMAs where the host build does not), register and shared-memory limits
// (tests/gpu/resources.sh), and cuDNN (absent: conv2d_*_cudnn exit with a message here).
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <mutex>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <vector>

// Fibers switch by a few lines of assembly on x86-64 (about 20x cheaper than swapcontext, which
// makes a system call per switch), by ucontext elsewhere or with -DCUDEMU_UCONTEXT.
#if defined(__x86_64__) && !defined(CUDEMU_UCONTEXT)
#define CUDEMU_ASM_SWITCH 1
#else
#define CUDEMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

namespace {

[[noreturn]] void fail(const char *fmt, ...) {
  fflush(stdout);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "cudemu: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fflush(stderr);
  _exit(1);
}

size_t page_size() {
  static const size_t p = (size_t)sysconf(_SC_PAGESIZE);
  return p;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// ---- device memory ------------------------------------------------------------------------------

struct Alloc {
  char *region;      // mapping: [guard page][data pages][guard page]
  size_t region_len; //
  char *data, *end;  // the data pages
  char *p;           // what cudaMalloc returned: 256-byte aligned, p + bytes <= end
  size_t bytes;
};

struct Memory {
  std::mutex mu;
  std::map<uintptr_t, Alloc> allocs; // by p
  size_t in_use = 0, limit = 0;
  int last_error = cudaSuccess;
} mem;

// The allocation holding [p, p + n) (n may be 0), or NULL.
const Alloc *find_alloc(const void *p, size_t n) {
  auto it = mem.allocs.upper_bound((uintptr_t)p);
  if (it == mem.allocs.begin()) return NULL;
  --it;
  const Alloc &a = it->second;
  const char *c = (const char *)p;
  if (c < a.p || c > a.p + a.bytes || n > (size_t)(a.p + a.bytes - c)) return NULL;
  return &a;
}

bool inside_any(const void *p) {
  auto it = mem.allocs.upper_bound((uintptr_t)p);
  if (it == mem.allocs.begin()) return false;
  --it;
  const char *c = (const char *)p;
  return c >= it->second.p && c < it->second.p + it->second.bytes;
}

// The poison of cudemu: every float of it is the signalling NaN 0x7FA5A5A5 (a double of it is
// about 1e305). Any arithmetic on it gives a quiet NaN with other bits, so even `*p += 0.0f` on a
// poisoned float changes its bytes, and a kernel that reads poison poisons its result.
const unsigned char POISON[4] = {0xA5, 0xA5, 0xA5, 0x7F}; // little-endian 0x7FA5A5A5

// poison() copies from a pattern buffer at the same address phase (mod 4) as the destination.
struct PoisonBuf {
  alignas(16) unsigned char b[65536 + 4];
  PoisonBuf() {
    for (size_t i = 0; i < sizeof b; i++)
      b[i] = POISON[i & 3];
  }
};

const PoisonBuf &poison_pattern() {
  static const PoisonBuf pb;
  return pb;
}

void poison(void *p, size_t n) {
  const PoisonBuf &pb = poison_pattern();
  unsigned char *c = (unsigned char *)p;
  while (n) {
    const size_t k = n < 65536 ? n : 65536;
    memcpy(c, pb.b + ((uintptr_t)c & 3), k);
    c += k;
    n -= k;
  }
}

// Compared with memcmp against the pattern at the same phase: the guards around every allocation
// are checked after every launch, and a byte loop there took a tenth of an emulated training run.
bool poisoned(const char *p, size_t n) {
  const PoisonBuf &pb = poison_pattern();
  while (n) {
    const size_t k = n < 65536 ? n : 65536;
    if (memcmp(p, pb.b + ((uintptr_t)p & 3), k)) return false;
    p += k;
    n -= k;
  }
  return true;
}

// The poison before and after an allocation, on its own pages, is intact.
bool head_intact(const Alloc &a) { return poisoned(a.data, (size_t)(a.p - a.data)); }
bool tail_intact(const Alloc &a) {
  return poisoned(a.p + a.bytes, (size_t)(a.end - (a.p + a.bytes)));
}

// After every launch: the poison around each allocation is intact.
void check_guards(const char *kernel) {
  std::lock_guard<std::mutex> g(mem.mu);
  for (auto &kv : mem.allocs) {
    const Alloc &a = kv.second;
    if (!head_intact(a))
      fail("kernel %s wrote before the start of a %zu-byte allocation", kernel, a.bytes);
    if (!tail_intact(a))
      fail("kernel %s wrote past the end of a %zu-byte allocation", kernel, a.bytes);
  }
}

// ---- fibers
// ---------------------------------------------------------------------------------------

// T_WARP: stopped at a warp collective its warp has not completed; T_READY: released from one,
// to be resumed in the same phase.
// T_WG: stopped at a warpgroup collective (wgmma) its warpgroup has not completed.
enum { T_NEW, T_RUN, T_WAIT, T_DONE, T_WARP, T_READY, T_WG };

// A cp.async in flight: its source bytes (read when issued; a kernel must not write the source of
// a copy in flight) land in shared memory when the thread waits for its group.
struct AsyncCopy {
  unsigned char *dst;
  unsigned char data[16];
  unsigned char issued[16]; // dst's poison when issued: any other value when it lands is a store
                            // (or another copy) into it while it was in flight
  int cp_size, src_size;
  unsigned long group; // the thread's commit count when issued
  const char *file;    // where it was issued
  int line;
};

struct Thread {
  void *sp; // saved stack pointer (x86-64 switch)
#if !CUDEMU_ASM_SWITCH
  ucontext_t uc;
#endif
  int state;
  const char *file;
  int line;
  unsigned long collectives; // warp collectives this thread has completed in this block
  unsigned long commits;     // cp.async groups committed in this block
  std::vector<AsyncCopy> copies;
  unsigned long wg_collectives; // warpgroup collectives (wgmma) completed in this block
  unsigned long wg_commits;     // wgmma.commit_group executed in this block
  unsigned long proxy_fences;   // fence.proxy.async executed in this block
  bool wg_fenced; // a wgmma.fence since the block began or a wait_group wrote accumulators back
  bool rs_since_fence; // a wgmma with A in registers since the last wgmma.fence ...
  uint32_t rs_a[4];    // ... which read these
};

// One warp's collective in progress. Two of them alternate (by the parity of the lanes' collective
// count): the last lane to arrive releases the others, and may reach the warp's next collective
// before they have read this one's values; it cannot reach the one after before they arrive.
constexpr size_t WARP_BYTES = 64; // the largest contribution of a lane (an mma's fragments)
constexpr size_t WARP_OUT = 16;   // the largest result of a lane (an mma's D fragment)
// A warp operation computed once for the whole warp, by the last lane to arrive: from every
// lane's input (data) to every lane's result (out).
typedef void (*WarpCompute)(const unsigned char (*in)[WARP_BYTES], unsigned char (*out)[WARP_OUT]);
struct WarpColl {
  unsigned arrived = 0, read = 0;
  const char *what = nullptr, *file = nullptr;
  int line = 0;
  size_t bytes = 0;
  unsigned char data[32][WARP_BYTES];
  unsigned char out[32][WARP_OUT];
};
struct Warp {
  WarpColl c[2];
};

// ---- warpgroups (wgmma, sm_90): 4 consecutive warps, 128 threads
// A thread's operands of one warpgroup instruction (on its stack while it waits there).
struct WgArgs {
  float *d;          // mma: the thread's accumulators (n / 2 floats)
  const uint32_t *a; // mma: A's fragment in registers (4 words), or null (A by descriptor)
  uint64_t da, db;   // mma: descriptors of A (unless a) and B
  int n, scale_d, tnsp_a, tnsp_b;
  int wait;              // wait_group's N
  unsigned long commits; // the thread's wgmma.commit_group count
};
// One warpgroup's collective in progress; two alternate by the parity of the threads' count, as a
// warp's do.
struct WgColl {
  unsigned arrived = 0, read = 0;
  const char *what = nullptr, *file = nullptr;
  int line = 0;
  const WgArgs *args[128];
};
// A wgmma.mma_async in flight: its results, written into each thread's accumulators when a
// wait_group completes its group; until then the accumulators hold poison.
struct WgOp {
  unsigned long group; // the commit count when issued: the group it belongs to
  int n;
  float *d[128];
  bool live[128];          // false where a later wgmma on the same accumulators took over the chain
  std::vector<float> vals; // [128][n / 2]
  // The shared memory it read, 16-byte chunks as they were at issue: a store into them before the
  // wait is a race on a GPU (the instruction reads its operands at an undefined time).
  std::vector<std::pair<unsigned char *, std::array<unsigned char, 16>>> reads;
  const char *file;
  int line;
};
struct WGroup {
  WgColl c[2];
  std::vector<WgOp> ops;
};
// Who last landed a cp.async into each 16-byte chunk of dynamic shared memory, and that thread's
// fence.proxy.async count then: wgmma reads shared memory through the async proxy, which sees a
// generic-proxy write (cp.async included) only after the writer's fence.proxy.async.
struct ChunkWriter {
  unsigned writer; // thread + 1; 0: no cp.async landed here in this block
  unsigned long fences;
  const char *file;
  int line;
};

constexpr size_t STACK_BYTES = 256 * 1024;

struct Sched {
  std::mutex mu; // one launch at a time: shared memory is one set of statics
  const cudemu::Config *cfg = nullptr;
  void (*body)(void *) = nullptr;
  void *arg = nullptr;
  uint3 bidx{0, 0, 0}, tidx{0, 0, 0};
  unsigned cur = 0;
  std::vector<Thread> th;
  std::vector<Warp> warps;
  std::vector<WGroup> wgs;
  std::vector<ChunkWriter> chunks; // dynamic shared memory / 16
  bool chunks_used = false;        // some entry of chunks is set
  std::vector<char *> stacks;      // [guard page][STACK_BYTES], lowest address first
  void *main_sp = nullptr;
#if !CUDEMU_ASM_SWITCH
  ucontext_t main_uc;
#endif
  unsigned long launches = 0;
  int order_env = -2;                       // -2 not read yet, -1 mix, else the fixed order
  std::map<const void *, int> max_dyn_smem; // cudaFuncSetAttribute's limits, by kernel
} S;

// The blocks' dynamic shared memory (one block runs at a time): sm_90's largest. Its shared-window
// addresses (cvta.to.shared, what wgmma's descriptors hold) are DYN_WINDOW + offset; the host
// bytes sit at the same phase modulo 1024 (128 past a 1024-byte boundary, as a GPU may place
// dynamic shared memory after static), so a kernel that aligns its swizzled tiles by the host
// pointer aligns them in the window too, and one that assumes the base is 1024-aligned does not.
constexpr size_t DYN_SMEM_MAX = 227 * 1024;
constexpr size_t DYN_SHIFT = 128;
constexpr uint32_t DYN_WINDOW = 1024 + DYN_SHIFT;
alignas(1024) unsigned char dyn_store[DYN_SHIFT + DYN_SMEM_MAX];
unsigned char *const dyn_smem = dyn_store + DYN_SHIFT;

} // namespace

#if CUDEMU_ASM_SWITCH
// cudemu_switch(save, to): saves the callee-saved registers on the current stack, stores the stack
// pointer in *save, and continues on the stack `to` (made by fiber_init or saved by an earlier
// switch). The System V ABI leaves every other register to the caller.
asm(R"(
  .text
  .globl cudemu_switch
  .type cudemu_switch, @function
cudemu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cudemu_switch, .-cudemu_switch
)");
extern "C" void cudemu_switch(void **save, void *to);
#endif

namespace {

void complete_copies(Thread &t, unsigned long before_group);

void fiber_main() {
  S.body(S.arg);
  Thread &t = S.th[S.cur];
  complete_copies(t, ~0ul); // copies still in flight land when the thread ends
  t.state = T_DONE;
#if CUDEMU_ASM_SWITCH
  cudemu_switch(&t.sp, S.main_sp);
#else
  swapcontext(&t.uc, &S.main_uc);
#endif
  fail("a finished thread was resumed");
}

char *stack_of(unsigned t) {
  while (S.stacks.size() <= t) {
    const size_t g = page_size();
    char *m = (char *)mmap(NULL, g + STACK_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("cannot map a fiber stack");
    if (mprotect(m, g, PROT_NONE) != 0) fail("mprotect of a stack guard failed");
    S.stacks.push_back(m + g);
  }
  return S.stacks[t];
}

void resume(unsigned t) {
  const dim3 b = S.cfg->block;
  S.cur = t;
  S.tidx = uint3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
  Thread &f = S.th[t];
  const bool fresh = f.state == T_NEW;
  f.state = T_RUN;
#if CUDEMU_ASM_SWITCH
  if (fresh) {
    uintptr_t *sp = (uintptr_t *)(((uintptr_t)(stack_of(t) + STACK_BYTES)) & ~(uintptr_t)15);
    *--sp = 0;                      // fiber_main's return address: it never returns
    *--sp = (uintptr_t)&fiber_main; // where the first switch's ret goes
    for (int i = 0; i < 6; i++)     // rbp, rbx, r12-r15
      *--sp = 0;
    f.sp = sp;
  }
  cudemu_switch(&S.main_sp, f.sp);
#else
  if (fresh) {
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = stack_of(t);
    f.uc.uc_stack.ss_size = STACK_BYTES;
    f.uc.uc_link = NULL;
    makecontext(&f.uc, fiber_main, 0);
  }
  swapcontext(&S.main_uc, &f.uc);
#endif
}

extern "C" char __start_cudemu_shared[] __attribute__((weak));
extern "C" char __stop_cudemu_shared[] __attribute__((weak));

// Static shared memory: the cudemu_shared section holds the __shared__ statics of every kernel in
// the program (~140 KB in the test programs), of which a block uses a few KB. Poisoning all of it
// before every block took ~15% of the emulated tests' time, so only the pages a launch touched are
// poisoned again: the section's whole pages stay inaccessible (PROT_NONE) and poison while no
// kernel touches them; the first access of a launch to one faults, and the handler marks it
// touched and opens it. Before every block the touched pages and the partial pages at the
// section's two ends are poisoned; after the launch the touched pages are poisoned and closed
// again. A page nobody touched still holds the poison it was closed with, so every block starts,
// as before, on shared memory that is poison throughout. A fault anywhere else goes to the handler
// that was there before (the default: the program stops with SIGSEGV as without cudemu).
struct SharedPages {
  char *a = nullptr, *b = nullptr;   // the section
  char *lo = nullptr, *hi = nullptr; // its whole pages
  size_t page = 0;
  std::vector<unsigned char> touched; // per page of [lo, hi)
  std::vector<unsigned> list;         // the touched pages, in the order they were touched
  size_t nlist = 0;
  struct sigaction old;
  bool ready = false;
} SP;

void shared_fault(int sig, siginfo_t *si, void *uc) {
  char *p = (char *)si->si_addr;
  if (p >= SP.lo && p < SP.hi) {
    const size_t i = (size_t)(p - SP.lo) / SP.page;
    if (!SP.touched[i] && SP.nlist < SP.list.size()) {
      SP.touched[i] = 1;
      SP.list[SP.nlist++] = (unsigned)i;
      if (mprotect(SP.lo + i * SP.page, SP.page, PROT_READ | PROT_WRITE) == 0) return;
    }
  }
  // Not a closed page of the section: the previous disposition, which the fault meets on return.
  (void)sig, (void)uc;
  sigaction(SIGSEGV, &SP.old, nullptr);
}

// At the first launch: poison the section and close its whole pages.
void shared_pages_init() {
  SP.ready = true;
  SP.a = __start_cudemu_shared, SP.b = __stop_cudemu_shared;
  if (!SP.a || SP.b <= SP.a) {
    SP.a = SP.b = nullptr;
    return;
  }
  SP.page = page_size();
  poison(SP.a, (size_t)(SP.b - SP.a));
  const uintptr_t lo = ((uintptr_t)SP.a + SP.page - 1) / SP.page * SP.page,
                  hi = (uintptr_t)SP.b / SP.page * SP.page;
  if (hi <= lo) return; // no whole page: the fragments are poisoned before every block
  SP.lo = (char *)lo, SP.hi = (char *)hi;
  const size_t n = (hi - lo) / SP.page;
  SP.touched.assign(n, 0);
  SP.list.assign(n, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = shared_fault;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &SP.old) != 0) fail("cannot install the shared-memory fault handler");
  if (mprotect(SP.lo, hi - lo, PROT_NONE) != 0) fail("mprotect of static shared memory failed");
}

void poison_shared(size_t dyn) {
  if (!SP.ready) shared_pages_init();
  if (SP.a) {
    if (!SP.lo) {
      poison(SP.a, (size_t)(SP.b - SP.a));
    } else {
      poison(SP.a, (size_t)(SP.lo - SP.a));
      poison(SP.hi, (size_t)(SP.b - SP.hi));
      for (size_t i = 0; i < SP.nlist; i++)
        poison(SP.lo + (size_t)SP.list[i] * SP.page, SP.page);
    }
  }
  if (dyn) poison(dyn_smem, dyn);
}

// After a launch: the touched pages poisoned and closed again.
void close_shared_pages() {
  for (size_t i = 0; i < SP.nlist; i++) {
    char *p = SP.lo + (size_t)SP.list[i] * SP.page;
    poison(p, SP.page);
    if (mprotect(p, SP.page, PROT_NONE) != 0) fail("mprotect of static shared memory failed");
    SP.touched[SP.list[i]] = 0;
  }
  SP.nlist = 0;
}

uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum { ORDER_FWD, ORDER_REV, ORDER_SHUFFLE };

// order [0, n) as `kind` says; `salt` varies the shuffle.
void make_order(std::vector<unsigned> &o, unsigned n, int kind, uint64_t salt) {
  o.resize(n);
  for (unsigned i = 0; i < n; i++)
    o[i] = kind == ORDER_REV ? n - 1 - i : i;
  if (kind == ORDER_SHUFFLE)
    for (unsigned i = n; i > 1; i--) {
      const unsigned j = (unsigned)(mix64(salt + i) % i);
      const unsigned t = o[i - 1];
      o[i - 1] = o[j];
      o[j] = t;
    }
}

int order_from_env() {
  const char *e = getenv("CUDEMU_ORDER");
  if (!e || !*e || !strcmp(e, "mix")) return -1;
  if (!strcmp(e, "fwd")) return ORDER_FWD;
  if (!strcmp(e, "rev")) return ORDER_REV;
  if (!strcmp(e, "shuffle")) return ORDER_SHUFFLE;
  fail("CUDEMU_ORDER must be fwd, rev, shuffle or mix, not '%s'", e);
}

void run_block(const cudemu::Config &c, int order, uint64_t salt, std::vector<unsigned> &o) {
  const unsigned nt = c.block.x * c.block.y * c.block.z;
  poison_shared(c.smem);
  for (unsigned t = 0; t < nt; t++) {
    Thread &th = S.th[t];
    th.state = T_NEW;
    th.collectives = th.commits = 0;
    th.copies.clear();
    th.wg_collectives = th.wg_commits = th.proxy_fences = 0;
    th.wg_fenced = th.rs_since_fence = false;
  }
  // Only the collectives' counters need resetting: a collective's first lane clears its data.
  // (assign(n, Warp()) would zero and copy ~5 KB per warp for every block.)
  S.warps.resize((nt + 31) / 32);
  for (Warp &w : S.warps)
    for (WarpColl &wc : w.c)
      wc.arrived = wc.read = 0;
  for (WGroup &g : S.wgs)
    g.ops.clear();
  S.wgs.resize((nt + 127) / 128);
  if (S.chunks_used) {
    std::fill(S.chunks.begin(), S.chunks.end(), ChunkWriter{0, 0, nullptr, 0});
    S.chunks_used = false;
  }
  const dim3 b = c.block;
  for (int phase = 0;; phase++) {
    make_order(o, nt, order, salt + 0x1000003ull * (uint64_t)phase);
    // Every thread once (each runs to a barrier, a warp collective or its end), then the threads
    // that warp collectives released, until none is left to run.
    for (unsigned i = 0; i < nt; i++)
      if (S.th[o[i]].state != T_DONE) resume(o[i]);
    for (bool again = true; again;) {
      again = false;
      for (unsigned i = 0; i < nt; i++)
        if (S.th[o[i]].state == T_READY) resume(o[i]), again = true;
    }
    for (unsigned t = 0; t < nt; t++)
      if (S.th[t].state == T_WARP) {
        const WarpColl &wc = S.warps[t / 32].c[S.th[t].collectives & 1];
        const unsigned w0 = t / 32 * 32, w1 = std::min(nt, w0 + 32);
        unsigned missing = w0;
        while (missing + 1 < w1 && S.th[missing].state == T_WARP)
          missing++;
        fail("kernel %s, block (%u,%u,%u), warp %u: lane %u waits at %s (%s:%d) but lane %u %s; "
             "every lane of a warp must reach the same warp collective",
             c.kernel, S.bidx.x, S.bidx.y, S.bidx.z, t / 32, t % 32, wc.what, wc.file, wc.line,
             missing % 32,
             S.th[missing].state == T_DONE ? "returned" : "waits at __syncthreads or elsewhere");
      }
    for (unsigned t = 0; t < nt; t++)
      if (S.th[t].state == T_WG) {
        const WgColl &wc = S.wgs[t / 128].c[S.th[t].wg_collectives & 1];
        unsigned missing = t / 128 * 128;
        while (missing + 1 < t / 128 * 128 + 128 && S.th[missing].state == T_WG)
          missing++;
        fail("kernel %s, block (%u,%u,%u), warpgroup %u: thread %u waits at %s (%s:%d) but thread "
             "%u %s; every thread of a warpgroup must reach the same wgmma instruction",
             c.kernel, S.bidx.x, S.bidx.y, S.bidx.z, t / 128, t, wc.what, wc.file, wc.line, missing,
             S.th[missing].state == T_DONE ? "returned" : "waits at __syncthreads or elsewhere");
      }
    int waiting = -1, done = -1;
    for (unsigned t = 0; t < nt; t++) {
      if (S.th[t].state == T_WAIT && waiting < 0) waiting = (int)t;
      if (S.th[t].state == T_DONE && done < 0) done = (int)t;
    }
    if (waiting < 0) { // every thread returned
      for (size_t g = 0; g < S.wgs.size(); g++)
        if (!S.wgs[g].ops.empty())
          fail("kernel %s, block (%u,%u,%u), warpgroup %zu: the wgmma.mma_async at %s:%d was still "
               "in flight when its threads returned (no wgmma.wait_group completed it)",
               c.kernel, S.bidx.x, S.bidx.y, S.bidx.z, g, S.wgs[g].ops[0].file,
               S.wgs[g].ops[0].line);
      return;
    }
    const Thread &w = S.th[waiting];
    if (done >= 0)
      fail("kernel %s, block (%u,%u,%u): thread %d returned while thread %d waits at "
           "__syncthreads (%s:%d); a barrier must be reached by every thread of the block",
           c.kernel, S.bidx.x, S.bidx.y, S.bidx.z, done, waiting, w.file, w.line);
    for (unsigned t = 0; t < nt; t++)
      if (S.th[t].line != w.line || (S.th[t].file != w.file && strcmp(S.th[t].file, w.file) != 0))
        fail("kernel %s, block (%u,%u,%u): threads wait at different barriers: thread %d at "
             "%s:%d, thread %u (%u,%u,%u) at %s:%d",
             c.kernel, S.bidx.x, S.bidx.y, S.bidx.z, waiting, w.file, w.line, t, t % b.x,
             (t / b.x) % b.y, t / (b.x * b.y), S.th[t].file, S.th[t].line);
  }
}

// CUDEMU_PROFILE=1: at exit, the launch configurations that took the most emulated time (to see
// what makes an emulated test slow; the numbers say nothing about a GPU).
bool profile_on() {
  static const int on = getenv("CUDEMU_PROFILE") && *getenv("CUDEMU_PROFILE") != '0';
  return on;
}

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

struct ProfileEntry {
  double seconds = 0;
  long launches = 0;
};
std::map<std::string, ProfileEntry> *profile;

void profile_print() {
  std::vector<std::pair<double, std::string>> v;
  for (auto &kv : *profile)
    v.push_back({kv.second.seconds, kv.first});
  std::sort(v.rbegin(), v.rend());
  long total = 0;
  for (auto &kv : *profile)
    total += kv.second.launches;
  fprintf(stderr,
          "cudemu profile: %ld kernel launches in all (emulated seconds, launches, kernel "
          "grid block):\n",
          total);
  for (size_t i = 0; i < v.size() && i < 15; i++)
    fprintf(stderr, "  %8.2f s %6ld  %s\n", v[i].first, (*profile)[v[i].second].launches,
            v[i].second.c_str());
}

void profile_add(const cudemu::Config &c, double t0) {
  if (!profile) {
    profile = new std::map<std::string, ProfileEntry>;
    atexit(profile_print);
  }
  char key[256];
  snprintf(key, sizeof key, "%s (%u,%u,%u) (%u,%u,%u)", c.kernel, c.grid.x, c.grid.y, c.grid.z,
           c.block.x, c.block.y, c.block.z);
  ProfileEntry &e = (*profile)[key];
  e.seconds += now_s() - t0;
  e.launches++;
}

} // namespace

// ---- the emulated language
// -------------------------------------------------------------------------

namespace cudemu {

uint3 thread_idx() {
  if (!S.cfg) fail("threadIdx read outside a kernel");
  return S.tidx;
}
uint3 block_idx() {
  if (!S.cfg) fail("blockIdx read outside a kernel");
  return S.bidx;
}
dim3 block_dim() {
  if (!S.cfg) fail("blockDim read outside a kernel");
  return S.cfg->block;
}
dim3 grid_dim() {
  if (!S.cfg) fail("gridDim read outside a kernel");
  return S.cfg->grid;
}

// The calling thread stops in `state` (a barrier or a warp collective) until run_block resumes it.
static void stop_here(Thread &t, int state) {
  t.state = state;
#if CUDEMU_ASM_SWITCH
  cudemu_switch(&t.sp, S.main_sp);
#else
  swapcontext(&t.uc, &S.main_uc);
#endif
  t.state = T_RUN;
}

void syncthreads(const char *file, int line) {
  if (!S.cfg) fail("__syncthreads outside a kernel (%s:%d)", file, line);
  Thread &t = S.th[S.cur];
  t.file = file;
  t.line = line;
  stop_here(t, T_WAIT);
}

void run(const Config &c, void (*body)(void *), void *arg) {
  std::lock_guard<std::mutex> g(S.mu);
  const dim3 gr = c.grid, bl = c.block;
  const uint64_t nt = (uint64_t)bl.x * bl.y * bl.z;
  if (!gr.x || !gr.y || !gr.z || !bl.x || !bl.y || !bl.z || nt > 1024 || bl.x > 1024 ||
      bl.y > 1024 || bl.z > 64 || gr.x > 2147483647u || gr.y > 65535 || gr.z > 65535) {
    std::lock_guard<std::mutex> m(mem.mu);
    mem.last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (c.smem > 48 * 1024) { // as the CUDA runtime: only up to the kernel's raised limit
    const auto it = S.max_dyn_smem.find(c.fn);
    if (it == S.max_dyn_smem.end() || (size_t)it->second < c.smem) {
      std::lock_guard<std::mutex> m(mem.mu);
      mem.last_error = cudaErrorInvalidValue;
      return;
    }
  }
  const double t0 = profile_on() ? now_s() : 0.0;
  if (S.order_env == -2) S.order_env = order_from_env();
  const unsigned long id = S.launches++;
  const int order = S.order_env >= 0 ? S.order_env : (int)(id % 3);
  S.cfg = &c;
  S.body = body;
  S.arg = arg;
  if (S.th.size() < nt) S.th.resize(nt);
  std::vector<unsigned> o, blocks;
  const uint64_t nb = (uint64_t)gr.x * gr.y * gr.z;
  // Block order: as the thread order, for grids of a size a test uses (else forward).
  const bool permute = nb <= (1u << 22);
  if (permute) make_order(blocks, (unsigned)nb, order, mix64(id));
  for (uint64_t i = 0; i < nb; i++) {
    const uint64_t b = permute ? blocks[i] : i;
    S.bidx = uint3{(unsigned)(b % gr.x), (unsigned)((b / gr.x) % gr.y),
                   (unsigned)(b / ((uint64_t)gr.x * gr.y))};
    run_block(c, order, mix64(id * 0x9E37ull + b), o);
  }
  S.cfg = nullptr;
  close_shared_pages();
  check_guards(c.kernel);
  if (profile_on()) profile_add(c, t0);
}

// ---- warps -------------------------------------------------------------------------------------

unsigned lane_id() {
  if (!S.cfg) fail("a warp operation outside a kernel");
  return S.cur % 32;
}

namespace {
// The collective under every warp operation: lane contributes `bytes` of `mine`; when all lanes
// have arrived, `compute` (if any) runs once; then each lane copies out either every lane's
// contribution (all, 32 x bytes) or its own result (res, res_bytes).
void warp_op(const void *mine, size_t bytes, void *all, WarpCompute compute, void *res,
             size_t res_bytes, unsigned mask, const char *what, const char *file, int line) {
  if (!S.cfg) fail("%s outside a kernel (%s:%d)", what, file, line);
  const dim3 b = S.cfg->block;
  const unsigned nt = b.x * b.y * b.z, cur = S.cur, w = cur / 32, lane = cur % 32;
  const unsigned lanes = std::min(32u, nt - w * 32);
  const unsigned need = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  if ((mask & need) != need)
    fail("kernel %s: %s (%s:%d) with mask 0x%08x in a warp of %u lanes; cudemu emulates full-warp "
         "collectives only",
         S.cfg->kernel, what, file, line, mask, lanes);
  if (bytes > WARP_BYTES)
    fail("%s: %zu bytes per lane (cudemu takes %zu)", what, bytes, WARP_BYTES);
  Thread &t = S.th[cur];
  WarpColl &wc = S.warps[w].c[t.collectives & 1];
  if (wc.arrived == 0) {
    wc.what = what, wc.file = file, wc.line = line, wc.bytes = bytes;
    // Every lane present writes its `bytes`, all a collective reads: only absent lanes' are set.
    if (lanes < 32) memset(wc.data[lanes], 0, (32 - lanes) * WARP_BYTES);
  } else if (wc.line != line || (wc.file != file && strcmp(wc.file, file) != 0) ||
             (wc.what != what && strcmp(wc.what, what) != 0) || wc.bytes != bytes) {
    fail("kernel %s, block (%u,%u,%u), warp %u: lanes at different warp collectives: %s (%s:%d) "
         "and lane %u at %s (%s:%d)",
         S.cfg->kernel, S.bidx.x, S.bidx.y, S.bidx.z, w, wc.what, wc.file, wc.line, lane, what,
         file, line);
  }
  if (bytes) memcpy(wc.data[lane], mine, bytes);
  if (++wc.arrived < lanes) {
    stop_here(t, T_WARP);
  } else {
    if (compute) compute(wc.data, wc.out);
    for (unsigned l = w * 32; l < w * 32 + lanes; l++)
      if (l != cur) S.th[l].state = T_READY;
  }
  // Every lane reads the values; the last to read frees the collective for reuse.
  if (all && bytes)
    for (unsigned l = 0; l < 32; l++)
      memcpy((unsigned char *)all + (size_t)l * bytes, wc.data[l], bytes);
  if (res) memcpy(res, wc.out[lane], res_bytes);
  t.collectives++;
  if (++wc.read == lanes) wc.arrived = wc.read = 0;
}
} // namespace

void warp_allgather(const void *mine, size_t bytes, void *all, unsigned mask, const char *what,
                    const char *file, int line) {
  warp_op(mine, bytes, all, nullptr, nullptr, 0, mask, what, file, line);
}

// The fragments of mma.sync as the PTX ISA lays them out ("Matrix Fragments for mma.m16n8k16 with
// floating point type" and "... mma.m16n8k8 ... .tf32"): lane l holds, with g = l / 4 (groupID)
// and t = l % 4 (threadID_in_group):
//   m16n8k16 .bf16  A (16x16, row): a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..),
//                   a[3] = (g+8, 2t+8..), two elements per word, the lower column in the low half;
//                   B (16x8, col): b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8.., n g);
//   m16n8k8  .tf32  A (16x8): a[0] = (g, t), a[1] = (g+8, t), a[2] = (g, t+4), a[3] = (g+8, t+4);
//                   B (8x8): b[0] = (k t, n g), b[1] = (k t+4, n g);
//   C and D (16x8 f32): c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..2t+1).
// Products are exact in FP32 (8- and 11-bit significands); the sums are FP32 in k order from c. A
// GPU adds in another order (the tests' tolerances allow for any order). A tf32 operand is the top
// 19 bits of its word: the hardware ignores the low 13, so a kernel that forgets cvt.rna.tf32
// loses precision here as it would there.
struct MmaFrag {
  uint32_t a[4], b[2];
  float c[4];
};
static_assert(sizeof(MmaFrag) <= WARP_BYTES, "an mma's fragments fit a lane's slot");

static float bf16_lo(uint32_t w) {
  const uint32_t u = w << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static float bf16_hi(uint32_t w) { return bf16_lo(w >> 16); }
static float tf32_of(uint32_t w) {
  const uint32_t u = w & 0xFFFFE000u;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// D = A·B + C for the whole warp, A [16][K], B [K][8] rebuilt from the lanes' fragments.
template <int K>
static void mma_finish(const float (&A)[16][K], const float (&B)[K][8],
                       const unsigned char (*in)[WARP_BYTES], unsigned char (*out)[WARP_OUT]) {
  // D starts as C and takes the products in k order, a row of 8 at a time (the same additions
  // in the same order for every element as one element at a time; the row vectorizes).
  float D[16][8];
  for (int l = 0; l < 32; l++) {
    MmaFrag f;
    memcpy(&f, in[l], sizeof f);
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 4; i++)
      D[g + 8 * (i / 2)][2 * t + i % 2] = f.c[i];
  }
  // Four rows at a time in vector registers: four independent chains of additions hide each
  // other's latency (one row's 8 sums must take their k in order; rows are independent). GCC's
  // vector extension with -ffp-contract=off: a product rounded, then a sum rounded, per element.
  typedef float v8 __attribute__((vector_size(32)));
  v8 Bv[K];
  for (int k = 0; k < K; k++)
    memcpy(&Bv[k], B[k], sizeof Bv[k]);
  for (int r = 0; r < 16; r += 4) {
    v8 d0, d1, d2, d3;
    memcpy(&d0, D[r], sizeof d0);
    memcpy(&d1, D[r + 1], sizeof d1);
    memcpy(&d2, D[r + 2], sizeof d2);
    memcpy(&d3, D[r + 3], sizeof d3);
    for (int k = 0; k < K; k++) {
      d0 += A[r][k] * Bv[k];
      d1 += A[r + 1][k] * Bv[k];
      d2 += A[r + 2][k] * Bv[k];
      d3 += A[r + 3][k] * Bv[k];
    }
    memcpy(D[r], &d0, sizeof d0);
    memcpy(D[r + 1], &d1, sizeof d1);
    memcpy(D[r + 2], &d2, sizeof d2);
    memcpy(D[r + 3], &d3, sizeof d3);
  }
  for (int l = 0; l < 32; l++) { // two pairs of adjacent columns per lane
    const int g = l / 4, t = l % 4;
    memcpy(out[l], &D[g][2 * t], 2 * sizeof(float));
    memcpy(out[l] + 2 * sizeof(float), &D[g + 8][2 * t], 2 * sizeof(float));
  }
}

static void mma_bf16_compute(const unsigned char (*in)[WARP_BYTES],
                             unsigned char (*out)[WARP_OUT]) {
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; l++) {
    MmaFrag f;
    memcpy(&f, in[l], sizeof f);
    const int g = l / 4, t = l % 4;
    A[g][2 * t] = bf16_lo(f.a[0]), A[g][2 * t + 1] = bf16_hi(f.a[0]);
    A[g + 8][2 * t] = bf16_lo(f.a[1]), A[g + 8][2 * t + 1] = bf16_hi(f.a[1]);
    A[g][2 * t + 8] = bf16_lo(f.a[2]), A[g][2 * t + 9] = bf16_hi(f.a[2]);
    A[g + 8][2 * t + 8] = bf16_lo(f.a[3]), A[g + 8][2 * t + 9] = bf16_hi(f.a[3]);
    B[2 * t][g] = bf16_lo(f.b[0]), B[2 * t + 1][g] = bf16_hi(f.b[0]);
    B[2 * t + 8][g] = bf16_lo(f.b[1]), B[2 * t + 9][g] = bf16_hi(f.b[1]);
  }
  mma_finish<16>(A, B, in, out);
}

static void mma_tf32_compute(const unsigned char (*in)[WARP_BYTES],
                             unsigned char (*out)[WARP_OUT]) {
  float A[16][8], B[8][8];
  for (int l = 0; l < 32; l++) {
    MmaFrag f;
    memcpy(&f, in[l], sizeof f);
    const int g = l / 4, t = l % 4;
    A[g][t] = tf32_of(f.a[0]), A[g + 8][t] = tf32_of(f.a[1]);
    A[g][t + 4] = tf32_of(f.a[2]), A[g + 8][t + 4] = tf32_of(f.a[3]);
    B[t][g] = tf32_of(f.b[0]), B[t + 4][g] = tf32_of(f.b[1]);
  }
  mma_finish<8>(A, B, in, out);
}

static void mma(const char *what, WarpCompute compute, float d[4], const uint32_t a[4],
                const uint32_t b[2], const float c[4], const char *file, int line) {
  MmaFrag mine;
  memcpy(mine.a, a, sizeof mine.a);
  memcpy(mine.b, b, sizeof mine.b);
  memcpy(mine.c, c, sizeof mine.c);
  float r[4];
  warp_op(&mine, sizeof mine, nullptr, compute, r, sizeof r, 0xffffffffu, what, file, line);
  memcpy(d, r, sizeof r);
}

void mma_bf16_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                       const char *file, int line) {
  mma("mma.m16n8k16.bf16", mma_bf16_compute, d, a, b, c, file, line);
}

void mma_tf32_m16n8k8(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                      const char *file, int line) {
  mma("mma.m16n8k8.tf32", mma_tf32_compute, d, a, b, c, file, line);
}

static bool in_shared(const void *p, size_t n) {
  const char *c = (const char *)p;
  const unsigned char *u = (const unsigned char *)p;
  const size_t dyn = S.cfg ? S.cfg->smem : 0;
  return (__start_cudemu_shared && c >= __start_cudemu_shared && c + n <= __stop_cudemu_shared) ||
         (u >= dyn_smem && u + n <= dyn_smem + dyn);
}

void *dynamic_shared() {
  if (!S.cfg) fail("dynamic shared memory outside a kernel");
  return dyn_smem;
}

cudaError_t set_max_dynamic_smem(const void *fn, int bytes) {
  // CUDEMU_SMEM_OPTIN=<bytes>: a device that allows less (to test what ganc does when refused).
  const char *e = getenv("CUDEMU_SMEM_OPTIN");
  const size_t optin =
      e && *e ? std::min((size_t)strtoull(e, NULL, 10), DYN_SMEM_MAX) : DYN_SMEM_MAX;
  if (bytes < 0 || (size_t)bytes > optin) {
    std::lock_guard<std::mutex> m(mem.mu);
    mem.last_error = cudaErrorInvalidValue;
    return cudaErrorInvalidValue;
  }
  std::lock_guard<std::mutex> g(S.mu);
  S.max_dyn_smem[fn] = bytes;
  return cudaSuccess;
}

// ldmatrix: lanes 8j..8j+7 give the addresses of matrix j's 8 rows (16 bytes each, 16-byte
// aligned, in shared memory); lane l receives row l / 4, elements 2(l % 4) and 2(l % 4) + 1 of
// each matrix, or with .trans the same position of the transposed matrix.
void ldmatrix(uint32_t *r, int num, bool trans, const void *row, const char *file, int line) {
  if (num != 1 && num != 2 && num != 4) fail("ldmatrix .x%d (%s:%d)", num, file, line);
  const void *rows[32];
  warp_allgather(&row, sizeof row, rows, 0xffffffffu, "ldmatrix", file, line);
  const int l = (int)lane_id(), g = l / 4, t = l % 4;
  for (int i = 0; i < 8 * num && l == 0; i++) // the lanes share the addresses: one lane checks
    if (((uintptr_t)rows[i] & 15) || !in_shared(rows[i], 16))
      fail("kernel %s: ldmatrix (%s:%d): lane %d's row address %p is %s", S.cfg->kernel, file, line,
           i, rows[i],
           ((uintptr_t)rows[i] & 15) ? "not 16-byte aligned" : "not 16 bytes of shared memory");
  for (int j = 0; j < num; j++) {
    uint16_t lo, hi;
    if (!trans) {
      const uint16_t *p = (const uint16_t *)rows[8 * j + g];
      lo = p[2 * t], hi = p[2 * t + 1];
    } else {
      lo = ((const uint16_t *)rows[8 * j + 2 * t])[g];
      hi = ((const uint16_t *)rows[8 * j + 2 * t + 1])[g];
    }
    r[j] = (uint32_t)lo | (uint32_t)hi << 16;
  }
}

void cp_async(void *dst, const void *src, int cp_size, int src_size, const char *file, int line) {
  if (!S.cfg) fail("cp.async outside a kernel (%s:%d)", file, line);
  if (cp_size != 4 && cp_size != 8 && cp_size != 16)
    fail("cp.async of %d bytes (%s:%d): 4, 8 or 16", cp_size, file, line);
  if (src_size < 0 || src_size > cp_size)
    fail("cp.async (%s:%d): src-size %d outside [0, %d]", file, line, src_size, cp_size);
  if (((uintptr_t)dst % cp_size) || ((uintptr_t)src % cp_size))
    fail("kernel %s: cp.async (%s:%d) of %d bytes from %p to %p: both must be %d-byte aligned",
         S.cfg->kernel, file, line, cp_size, src, dst, cp_size);
  if (!in_shared(dst, (size_t)cp_size))
    fail("kernel %s: cp.async (%s:%d): the destination %p is not shared memory", S.cfg->kernel,
         file, line, dst);
  AsyncCopy a;
  a.dst = (unsigned char *)dst, a.cp_size = cp_size, a.src_size = src_size;
  if (src_size) {
    std::lock_guard<std::mutex> g(mem.mu);
    if (!find_alloc(src, (size_t)src_size))
      fail("kernel %s: cp.async (%s:%d) reads %d bytes at %p, not inside one device allocation",
           S.cfg->kernel, file, line, src_size, src);
    memcpy(a.data, src, (size_t)src_size);
  }
  Thread &t = S.th[S.cur];
  a.group = t.commits;
  a.file = file, a.line = line;
  // Until the copy is waited for, its destination holds poison: a kernel that reads it early
  // reads NaNs (as bf16 pairs, every other element), not the data a GPU might have delivered.
  poison(dst, (size_t)cp_size);
  memcpy(a.issued, dst, (size_t)cp_size);
  t.copies.push_back(a);
}

void cp_async_commit() {
  if (!S.cfg) fail("cp.async.commit_group outside a kernel");
  S.th[S.cur].commits++;
}

void cp_async_wait(int n) {
  if (!S.cfg) fail("cp.async.wait_group outside a kernel");
  Thread &t = S.th[S.cur];
  if (n < 0) { // wait_all: commit what is open, wait for everything
    t.commits++;
    n = 0;
  }
  // Groups committed before the newest n are complete; uncommitted copies stay in flight.
  complete_copies(t, t.commits >= (unsigned long)n ? t.commits - (unsigned long)n : 0);
}

// ---- warpgroup MMA (sm_90a): wgmma.fence, wgmma.mma_async, commit_group, wait_group
// What the PTX ISA says ("Asynchronous Warpgroup Level Matrix Multiply-Accumulate"), emulated:
//   - every thread of the warpgroup (threads 128w..128w+127 of the block) executes the same
//     instruction with the same descriptors and immediates (checked);
//   - the accumulators of an mma_async in flight hold poison until a wait_group completes its
//     group: a thread that reads them early computes with NaN, and one that writes them stops
//     the kernel; a later mma_async on the same accumulators chains onto the one in flight (the
//     ordering the ISA gives same-shape accumulation);
//   - an mma_async that starts from registers (not chained) needs a wgmma.fence by its thread
//     since the block began or since a wait_group last wrote accumulators back, and one with A in
//     registers whose values changed since the thread's previous such mma_async needs a fence
//     between them;
//   - the shared memory it reads must not change until its wait_group (a race on a GPU), and a
//     chunk a cp.async landed in must have been published by the copying thread's
//     fence.proxy.async (wgmma reads through the async proxy).
// Lenient where a GPU is not: plain stores are not tracked for the proxy fence (a missing fence
// after them shows only on a GPU); the instruction is computed when the warpgroup's last thread
// arrives, which orders its warps as a barrier would (a kernel needs __syncthreads between other
// warps' stores and a wgmma reading them); a store of the same bytes into an operand in flight
// passes the race check.
namespace {

uint32_t window_of(const void *p, const char *what, const char *file, int line) {
  const unsigned char *u = (const unsigned char *)p;
  const size_t dyn = S.cfg ? S.cfg->smem : 0;
  if (u < dyn_smem || u > dyn_smem + dyn)
    fail("kernel %s: %s (%s:%d) of %p: cudemu gives shared-window addresses to the launch's "
         "dynamic shared memory only",
         S.cfg ? S.cfg->kernel : "?", what, file, line, p);
  return DYN_WINDOW + (uint32_t)(u - dyn_smem);
}

// The element (r, k) of a 16-bit operand of `rows` x 16 that `desc` describes: its host bytes.
// K-major (tnsp 0) and MN-major (tnsp 1), no swizzle or 32/64/128-byte swizzle, the canonical
// layouts of the ISA's "Shared Memory Matrix Layout" (byte offsets; W the swizzle width):
//   K-major,  none: (r%8)*16 + (r/8)*SBO + (k/8)*LBO + (k%8)*2
//   K-major,  W:    (r%8)*W + (r/8)*SBO + (k/8)*16 + (k%8)*2              (LBO unused)
//   MN-major, none: (r%8)*2 + (r/8)*SBO + (k%8)*16 + (k/8)*LBO
//   MN-major, W:    (r%(W/2))*2 + (r/(W/2))*LBO + (k%8)*W + (k/8)*SBO
// added to the start address; a swizzle then XORs address bits [7, 7+b) into bits [4, 4+b),
// b = log2(W/16), on the shared-window address.
struct Desc {
  uint32_t start, lbo, sbo;
  int w; // swizzle width in bytes, 0 for none
};
Desc decode_desc(uint64_t d, const char *what, const char *file, int line) {
  const uint64_t reserved = (3ull << 14) | (3ull << 30) | (7ull << 46) | (0x3FFull << 52);
  if (d & reserved)
    fail("kernel %s: %s (%s:%d): descriptor 0x%016llx sets reserved bits", S.cfg->kernel, what,
         file, line, (unsigned long long)d);
  if ((d >> 49) & 7)
    fail("kernel %s: %s (%s:%d): descriptor 0x%016llx has a matrix base offset (cudemu emulates "
         "base offset 0: start swizzled tiles on their pattern's boundary)",
         S.cfg->kernel, what, file, line, (unsigned long long)d);
  static const int widths[4] = {0, 128, 64, 32};
  Desc r;
  r.start = (uint32_t)(d & 0x3FFF) << 4;
  r.lbo = (uint32_t)((d >> 16) & 0x3FFF) << 4;
  r.sbo = (uint32_t)((d >> 32) & 0x3FFF) << 4;
  r.w = widths[d >> 62];
  if (r.w && ((r.start >> 7) & (uint32_t)(r.w / 16 - 1)))
    fail("kernel %s: %s (%s:%d): start address 0x%x is not on a row 0 of its %d-byte swizzle "
         "pattern (address bits 7.. must be 0; cudemu emulates base offset 0)",
         S.cfg->kernel, what, file, line, r.start, r.w);
  return r;
}

unsigned char *desc_elem(const Desc &d, bool mn_major, int r, int k, const char *what,
                         const char *file, int line) {
  uint32_t off;
  if (!mn_major)
    off = d.w ? (uint32_t)((r % 8) * d.w + (k / 8) * 16 + (k % 8) * 2) + (uint32_t)(r / 8) * d.sbo
              : (uint32_t)((r % 8) * 16 + (k % 8) * 2) + (uint32_t)(r / 8) * d.sbo +
                    (uint32_t)(k / 8) * d.lbo;
  else
    off = d.w ? (uint32_t)((r % (d.w / 2)) * 2 + (k % 8) * d.w) +
                    (uint32_t)(r / (d.w / 2)) * d.lbo + (uint32_t)(k / 8) * d.sbo
              : (uint32_t)((r % 8) * 2 + (k % 8) * 16) + (uint32_t)(r / 8) * d.sbo +
                    (uint32_t)(k / 8) * d.lbo;
  uint32_t a = (d.start + off) & 0x3FFFF;
  if (d.w) a ^= ((a >> 7) & (uint32_t)(d.w / 16 - 1)) << 4;
  const size_t dyn = S.cfg->smem;
  if (a < DYN_WINDOW || a + 2 > DYN_WINDOW + dyn)
    fail("kernel %s: %s (%s:%d): element (%d, %d) of an operand at shared address 0x%x, outside "
         "the launch's %zu bytes of dynamic shared memory at 0x%x",
         S.cfg->kernel, what, file, line, r, k, a, dyn, DYN_WINDOW);
  return dyn_smem + (a - DYN_WINDOW);
}

// The warpgroup collective: every thread of the calling thread's warpgroup arrives with `args`
// at the same instruction; the last to arrive runs `compute` once for all of them.
void wg_op(const WgArgs *args,
           void (*compute)(unsigned wg, const WgArgs *const *all, const char *file, int line),
           const char *what, const char *file, int line) {
  if (!S.cfg) fail("%s outside a kernel (%s:%d)", what, file, line);
  const dim3 b = S.cfg->block;
  const unsigned nt = b.x * b.y * b.z, cur = S.cur, w = cur / 128;
  if (nt % 128)
    fail("kernel %s: %s (%s:%d) in a block of %u threads: warpgroup instructions need whole "
         "warpgroups (a multiple of 128 threads)",
         S.cfg->kernel, what, file, line, nt);
  Thread &t = S.th[cur];
  WgColl &wc = S.wgs[w].c[t.wg_collectives & 1];
  if (wc.arrived == 0) {
    wc.what = what, wc.file = file, wc.line = line;
  } else if (wc.line != line || strcmp(wc.file, file) != 0 || strcmp(wc.what, what) != 0) {
    fail("kernel %s, block (%u,%u,%u), warpgroup %u: threads at different warpgroup "
         "instructions: %s (%s:%d) and thread %u at %s (%s:%d)",
         S.cfg->kernel, S.bidx.x, S.bidx.y, S.bidx.z, w, wc.what, wc.file, wc.line, cur, what, file,
         line);
  }
  wc.args[cur % 128] = args;
  if (++wc.arrived < 128) {
    stop_here(t, T_WG);
  } else {
    compute(w, wc.args, file, line);
    for (unsigned l = w * 128; l < w * 128 + 128; l++)
      if (l != cur) S.th[l].state = T_READY;
  }
  t.wg_collectives++;
  if (++wc.read == 128) wc.arrived = wc.read = 0;
}

float bf16_value(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

void wgmma_compute(unsigned wg, const WgArgs *const *all, const char *file, int line) {
  const char *what = "wgmma.mma_async";
  const WgArgs &a0 = *all[0];
  const int n = a0.n;
  for (int i = 1; i < 128; i++) {
    const WgArgs &x = *all[i];
    if (x.n != n || x.scale_d != a0.scale_d || x.tnsp_a != a0.tnsp_a || x.tnsp_b != a0.tnsp_b ||
        x.db != a0.db || (x.a == nullptr) != (a0.a == nullptr) || (!x.a && x.da != a0.da) ||
        x.commits != a0.commits)
      fail("kernel %s: %s (%s:%d): thread %u of warpgroup %u gives other operands than thread %u "
           "(descriptors, scale-d, transposes and commit groups must agree)",
           S.cfg->kernel, what, file, line, wg * 128 + i, wg, wg * 128);
  }
  WGroup &g = S.wgs[wg];
  // Each thread's C: the chain in flight on its accumulators, or the registers (after a fence).
  std::vector<float> C((size_t)128 * (n / 2), 0.0f);
  std::vector<int> chained(128, -1);
  for (int i = 0; i < 128; i++) {
    Thread &t = S.th[wg * 128 + i];
    for (size_t o = g.ops.size(); o-- > 0;)
      if (g.ops[o].live[i] && g.ops[o].d[i] == all[i]->d) {
        chained[i] = (int)o;
        break;
      }
    if (chained[i] >= 0) {
      const WgOp &p = g.ops[chained[i]];
      if (p.n != n)
        fail("kernel %s: %s (%s:%d): thread %u chains an m64n%dk16 onto an m64n%dk16 in flight on "
             "the same accumulators",
             S.cfg->kernel, what, file, line, wg * 128 + i, n, p.n);
      if (!poisoned((const char *)all[i]->d, sizeof(float) * (size_t)(n / 2)))
        fail("kernel %s: %s (%s:%d): thread %u wrote its accumulators while the wgmma.mma_async at "
             "%s:%d on them was in flight",
             S.cfg->kernel, what, file, line, wg * 128 + i, p.file, p.line);
      if (a0.scale_d)
        memcpy(&C[(size_t)i * (n / 2)], &p.vals[(size_t)i * (n / 2)], sizeof(float) * (n / 2));
    } else {
      if (!t.wg_fenced)
        fail("kernel %s: %s (%s:%d): thread %u issues it on accumulators not in flight without a "
             "wgmma.fence since the block began or the last wait_group wrote them back",
             S.cfg->kernel, what, file, line, wg * 128 + i);
      if (a0.scale_d) memcpy(&C[(size_t)i * (n / 2)], all[i]->d, sizeof(float) * (n / 2));
    }
  }
  WgOp op;
  op.group = a0.commits, op.n = n, op.file = file, op.line = line;
  std::map<unsigned char *, std::array<unsigned char, 16>> reads;
  auto read_chunk = [&](unsigned char *p) {
    unsigned char *c = (unsigned char *)((uintptr_t)p & ~(uintptr_t)15);
    if (reads.count(c)) return;
    const size_t ci = (size_t)(c - dyn_smem) / 16;
    if (S.chunks_used && S.chunks[ci].writer) {
      const ChunkWriter &cw = S.chunks[ci];
      if (S.th[cw.writer - 1].proxy_fences == cw.fences)
        fail("kernel %s: %s (%s:%d) reads shared memory at %p that thread %u's cp.async (%s:%d) "
             "wrote, and that thread ran no fence.proxy.async after the copy landed: wgmma reads "
             "through the async proxy, which may not see it",
             S.cfg->kernel, what, file, line, (void *)c, cw.writer - 1, cw.file, cw.line);
    }
    std::array<unsigned char, 16> v;
    memcpy(v.data(), c, 16);
    reads[c] = v;
  };
  // A [64][16], B [16][n], from bf16 halves.
  std::vector<float> A(64 * 16), B((size_t)16 * n);
  if (a0.a) {
    if (a0.tnsp_a)
      fail("kernel %s: %s (%s:%d): A from registers with imm-trans-a 1", S.cfg->kernel, what, file,
           line);
    for (int i = 0; i < 128; i++) {
      const int w = i / 32, l = i % 32, gr = l / 4, q = l % 4;
      const uint32_t *r = all[i]->a;
      for (int j = 0; j < 4; j++) {
        const int row = 16 * w + gr + 8 * (j % 2), col = 2 * q + 8 * (j / 2);
        A[row * 16 + col] = bf16_value((uint16_t)(r[j] & 0xFFFF));
        A[row * 16 + col + 1] = bf16_value((uint16_t)(r[j] >> 16));
      }
    }
  } else {
    const Desc da = decode_desc(a0.da, "wgmma.mma_async A", file, line);
    for (int r = 0; r < 64; r++)
      for (int k = 0; k < 16; k++) {
        unsigned char *p = desc_elem(da, a0.tnsp_a, r, k, "wgmma.mma_async A", file, line);
        read_chunk(p);
        uint16_t h;
        memcpy(&h, p, 2);
        A[r * 16 + k] = bf16_value(h);
      }
  }
  const Desc db = decode_desc(a0.db, "wgmma.mma_async B", file, line);
  for (int c = 0; c < n; c++)
    for (int k = 0; k < 16; k++) {
      unsigned char *p = desc_elem(db, a0.tnsp_b, c, k, "wgmma.mma_async B", file, line);
      read_chunk(p);
      uint16_t h;
      memcpy(&h, p, 2);
      B[(size_t)k * n + c] = bf16_value(h);
    }
  for (auto &kv : reads)
    op.reads.push_back({kv.first, kv.second});
  // D = A·B + C: products exact in FP32, summed in k order onto C (a GPU's order differs: the
  // tests' tolerances allow any order).
  op.vals.assign((size_t)128 * (n / 2), 0.0f);
  for (int i = 0; i < 128; i++) {
    const int w = i / 32, l = i % 32, gr = l / 4, q = l % 4;
    for (int v = 0; v < n / 2; v++) {
      const int row = 16 * w + gr + 8 * ((v / 2) % 2), col = 8 * (v / 4) + 2 * q + v % 2;
      float acc = C[(size_t)i * (n / 2) + v];
      for (int k = 0; k < 16; k++)
        acc += A[row * 16 + k] * B[(size_t)k * n + col];
      op.vals[(size_t)i * (n / 2) + v] = acc;
    }
    op.d[i] = all[i]->d;
    op.live[i] = true;
    if (chained[i] >= 0) g.ops[chained[i]].live[i] = false;
    poison(all[i]->d, sizeof(float) * (size_t)(n / 2));
  }
  g.ops.push_back(std::move(op));
}

void wg_wait_compute(unsigned wg, const WgArgs *const *all, const char *file, int line) {
  const WgArgs &a0 = *all[0];
  for (int i = 1; i < 128; i++)
    if (all[i]->wait != a0.wait || all[i]->commits != a0.commits)
      fail("kernel %s: wgmma.wait_group (%s:%d): thread %u of warpgroup %u waits for other groups "
           "than thread %u",
           S.cfg->kernel, file, line, wg * 128 + i, wg, wg * 128);
  WGroup &g = S.wgs[wg];
  const unsigned long done_before =
      a0.commits >= (unsigned long)a0.wait ? a0.commits - (unsigned long)a0.wait : 0;
  size_t k = 0;
  bool wrote = false;
  for (size_t o = 0; o < g.ops.size(); o++) {
    WgOp &op = g.ops[o];
    if (op.group >= done_before) {
      if (k != o) g.ops[k] = std::move(op);
      k++;
      continue;
    }
    for (auto &r : op.reads)
      if (memcmp(r.first, r.second.data(), 16))
        fail("kernel %s: shared memory at %p that the wgmma.mma_async at %s:%d reads was written "
             "before wgmma.wait_group (%s:%d) completed it: a race on a GPU",
             S.cfg->kernel, (void *)r.first, op.file, op.line, file, line);
    for (int i = 0; i < 128; i++) {
      if (!op.live[i]) continue;
      if (!poisoned((const char *)op.d[i], sizeof(float) * (size_t)(op.n / 2)))
        fail("kernel %s: thread %u wrote its accumulators while the wgmma.mma_async at %s:%d on "
             "them was in flight (completed by wgmma.wait_group at %s:%d)",
             S.cfg->kernel, wg * 128 + i, op.file, op.line, file, line);
      memcpy(op.d[i], &op.vals[(size_t)i * (op.n / 2)], sizeof(float) * (size_t)(op.n / 2));
      wrote = true;
    }
  }
  g.ops.resize(k);
  if (wrote)
    for (int i = 0; i < 128; i++)
      S.th[wg * 128 + i].wg_fenced = false;
}

} // namespace

uint32_t shared_address(const void *p, const char *file, int line) {
  return window_of(p, "cvta.to.shared", file, line);
}

void wgmma_fence() {
  if (!S.cfg) fail("wgmma.fence outside a kernel");
  S.th[S.cur].wg_fenced = true;
  S.th[S.cur].rs_since_fence = false;
}

void fence_proxy_async() {
  if (!S.cfg) fail("fence.proxy.async outside a kernel");
  S.th[S.cur].proxy_fences++;
}

void wgmma_commit() {
  if (!S.cfg) fail("wgmma.commit_group outside a kernel");
  S.th[S.cur].wg_commits++;
}

void wgmma_wait(int n, const char *file, int line) {
  if (!S.cfg) fail("wgmma.wait_group outside a kernel (%s:%d)", file, line);
  if (n < 0 || n > 7) fail("wgmma.wait_group %d (%s:%d): N in [0, 7]", n, file, line);
  WgArgs a;
  memset(&a, 0, sizeof a);
  a.wait = n;
  a.commits = S.th[S.cur].wg_commits;
  wg_op(&a, wg_wait_compute, "wgmma.wait_group", file, line);
}

void wgmma_bf16(float *d, int n, const uint32_t *a_regs, uint64_t a_desc, uint64_t b_desc,
                int scale_d, int tnsp_a, int tnsp_b, const char *file, int line) {
  if (n < 8 || n > 256 || n % 8)
    fail("wgmma m64n%dk16 (%s:%d): N in 8..256, a multiple of 8", n, file, line);
  WgArgs a;
  memset(&a, 0, sizeof a);
  a.d = d, a.a = a_regs, a.da = a_desc, a.db = b_desc, a.n = n, a.scale_d = scale_d != 0;
  a.tnsp_a = tnsp_a, a.tnsp_b = tnsp_b;
  a.commits = S.cfg ? S.th[S.cur].wg_commits : 0;
  if (a_regs && S.cfg) { // A's registers: a write needs a wgmma.fence before the next reader
    Thread &t = S.th[S.cur];
    if (t.rs_since_fence && memcmp(t.rs_a, a_regs, sizeof t.rs_a))
      fail("kernel %s: wgmma.mma_async (%s:%d): thread %u's A registers changed since its last "
           "wgmma.mma_async without a wgmma.fence between (that one may still be reading them)",
           S.cfg->kernel, file, line, S.cur);
    memcpy(t.rs_a, a_regs, sizeof t.rs_a);
    t.rs_since_fence = true;
  }
  wg_op(&a, wgmma_compute, "wgmma.mma_async", file, line);
}

} // namespace cudemu

namespace {
// Lands thread t's copies of groups before `before_group`, in issue order.
void complete_copies(Thread &t, unsigned long before_group) {
  size_t k = 0;
  for (size_t i = 0; i < t.copies.size(); i++) {
    AsyncCopy &a = t.copies[i];
    if (a.group < before_group) {
      // On a GPU the copy's write and a plain store (or another copy) to the same bytes while it
      // is in flight land in no defined order; here the copy lands last, which could hide such a
      // race — so it is one, whatever the values.
      if (memcmp(a.dst, a.issued, (size_t)a.cp_size))
        fail("kernel %s: shared memory at %p was written while the cp.async issued at %s:%d "
             "into it was in flight (before its wait_group): a race on a GPU",
             S.cfg ? S.cfg->kernel : "?", (void *)a.dst, a.file, a.line);
      memcpy(a.dst, a.data, (size_t)a.src_size);
      memset(a.dst + a.src_size, 0, (size_t)(a.cp_size - a.src_size));
      if (a.dst >= dyn_smem && a.dst < dyn_smem + DYN_SMEM_MAX) { // for wgmma's proxy check
        if (S.chunks.empty()) S.chunks.resize(DYN_SMEM_MAX / 16);
        const size_t c0 = (size_t)(a.dst - dyn_smem) / 16,
                     c1 = (size_t)(a.dst + a.cp_size - 1 - dyn_smem) / 16;
        for (size_t c = c0; c <= c1; c++)
          S.chunks[c] =
              ChunkWriter{(unsigned)(&t - S.th.data()) + 1, t.proxy_fences, a.file, a.line};
        S.chunks_used = true;
      }
    } else {
      t.copies[k++] = a;
    }
  }
  t.copies.resize(k);
}
} // namespace

// ---- runtime API
// ----------------------------------------------------------------------------------

static cudaError_t set_error(cudaError_t e) {
  std::lock_guard<std::mutex> g(mem.mu);
  mem.last_error = e;
  return e;
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess:
    return "no error";
  case cudaErrorInvalidValue:
    return "invalid argument";
  case cudaErrorMemoryAllocation:
    return "out of memory";
  case cudaErrorInvalidConfiguration:
    return "invalid configuration argument";
  case cudaErrorInsufficientDriver:
    return "CUDA driver version is insufficient for CUDA runtime version";
  case cudaErrorNoDevice:
    return "no CUDA-capable device is detected";
  case cudaErrorInvalidDevice:
    return "invalid device ordinal";
  case cudaErrorLaunchFailure:
    return "unspecified launch failure";
  case cudaErrorStreamCaptureUnsupported:
    return "operation not permitted when stream is capturing";
  case cudaErrorStreamCaptureInvalidated:
    return "operation failed due to a previous error during capture";
  case cudaErrorStreamCaptureWrongThread:
    return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError(void) {
  std::lock_guard<std::mutex> g(mem.mu);
  const cudaError_t e = (cudaError_t)mem.last_error;
  mem.last_error = cudaSuccess;
  return e;
}

cudaError_t cudaGetDeviceCount(int *n) {
  *n = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
  if (d != 0) return set_error(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "cudemu (CUDA emulated on the CPU for tests; not a GPU)");
  p->totalGlobalMem = (size_t)16 << 30;
  p->sharedMemPerBlock = 48 * 1024;
  p->maxThreadsPerBlock = 1024;
  // CUDEMU_CC=<major·10 + minor>: another compute capability (what ganc does on a device that
  // lacks a variant's architecture); default 9.0.
  const char *cc = getenv("CUDEMU_CC");
  const int v = cc && *cc ? atoi(cc) : 90;
  p->major = v / 10;
  p->minor = v % 10;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}

struct CUstream_st {
  unsigned flags;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  std::vector<std::function<void()>> ops; // recorded while capturing
};

// Graphs: the operations of one capture, in stream order (a stream's capture is a chain).
struct CUgraph_st {
  std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> ops;
};

namespace {
// The stream whose capture is open (ganc captures on one stream at a time; a second capture while
// one is open is refused), and the refusal of what a capture forbids.
std::mutex capture_mu;
cudaStream_t capturing = nullptr;

bool capture_open() {
  std::lock_guard<std::mutex> g(capture_mu);
  return capturing != nullptr;
}

// A call that CUDA refuses while a capture is open in this thread: the capture is invalidated
// and the call fails, as cudaStreamCaptureModeThreadLocal does.
cudaError_t refuse_in_capture(const char *call) {
  std::lock_guard<std::mutex> g(capture_mu);
  if (!capturing) return cudaSuccess;
  capturing->capture = cudaStreamCaptureStatusInvalidated;
  fprintf(stderr, "cudemu: %s while a stream capture is open: refused, capture invalidated\n",
          call);
  return set_error(cudaErrorStreamCaptureUnsupported);
}
} // namespace

namespace cudemu {
bool record(cudaStream_t s, const std::function<void()> &op) {
  std::lock_guard<std::mutex> g(capture_mu);
  if (!s || s->capture == cudaStreamCaptureStatusNone) return false;
  if (s->capture == cudaStreamCaptureStatusActive) s->ops.push_back(op);
  return true; // an invalidated capture drops what follows, as CUDA does
}
} // namespace cudemu

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  std::lock_guard<std::mutex> g(capture_mu);
  if (!s || capturing) return set_error(cudaErrorStreamCaptureUnsupported);
  s->capture = cudaStreamCaptureStatusActive;
  s->ops.clear();
  capturing = s;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *out) {
  std::lock_guard<std::mutex> g(capture_mu);
  if (!out) return set_error(cudaErrorInvalidValue);
  *out = nullptr;
  if (!s || capturing != s) return set_error(cudaErrorStreamCaptureWrongThread);
  const bool ok = s->capture == cudaStreamCaptureStatusActive;
  capturing = nullptr;
  s->capture = cudaStreamCaptureStatusNone;
  if (!ok) {
    s->ops.clear();
    return set_error(cudaErrorStreamCaptureInvalidated);
  }
  *out = new CUgraph_st{std::move(s->ops)};
  s->ops.clear();
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
  std::lock_guard<std::mutex> g(capture_mu);
  if (!status) return set_error(cudaErrorInvalidValue);
  *status = s ? s->capture : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t gr, unsigned long long) {
  if (!e || !gr) return set_error(cudaErrorInvalidValue);
  *e = new CUgraphExec_st{gr->ops};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  if (!e) return set_error(cudaErrorInvalidValue);
  if (capture_open()) { // ganc never nests graphs
    refuse_in_capture("cudaGraphLaunch");
    return cudaErrorStreamCaptureUnsupported;
  }
  (void)s;
  for (const auto &op : e->ops)
    op();
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t gr) {
  delete gr;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
  *s = new CUstream_st();
  (*s)->flags = flags;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (capture_open() && capturing == s) return refuse_in_capture("cudaStreamDestroy");
  delete s;
  return cudaSuccess;
}
// Launches and copies run when they are called: a stream is always idle.
// While a capture is open nothing has run: synchronising is refused.
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return refuse_in_capture("cudaStreamSynchronize");
}

struct CUevent_st {
  double t;      // host seconds when recorded
  bool recorded; // cudaEventElapsedTime on an unrecorded event is an error, as in CUDA
};
cudaError_t cudaEventCreate(cudaEvent_t *e) {
  if (!e) return cudaErrorInvalidValue;
  *e = new CUevent_st{0, false};
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return cudaErrorInvalidValue;
  if (cudemu::record(s, [e] { cudaEventRecord(e, nullptr); })) return cudaSuccess;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  e->t = ts.tv_sec + ts.tv_nsec * 1e-9;
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return cudaErrorInvalidValue;
  return refuse_in_capture("cudaEventSynchronize");
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  if (!s || !e) return set_error(cudaErrorInvalidValue);
  cudemu::record(s, [] {}); // nothing to wait for at replay either
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  if (!ms || !a || !b || !a->recorded || !b->recorded) return cudaErrorInvalidValue;
  *ms = (float)((b->t - a->t) * 1e3);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **out, size_t bytes) {
  if (capture_open()) return refuse_in_capture("cudaMalloc");
  std::lock_guard<std::mutex> g(mem.mu);
  if (!mem.limit) {
    const char *e = getenv("CUDEMU_MEM_LIMIT");
    mem.limit = e && *e ? strtoull(e, NULL, 10) : (size_t)16 << 30;
  }
  if (bytes > mem.limit || mem.in_use > mem.limit - bytes) {
    mem.last_error = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  const size_t pg = page_size(), data_len = round_up(bytes + 256, pg);
  const size_t len = data_len + 2 * pg;
  char *r = (char *)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) {
    mem.last_error = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  if (mprotect(r, pg, PROT_NONE) || mprotect(r + pg + data_len, pg, PROT_NONE))
    fail("mprotect of a guard page failed");
  Alloc a;
  a.region = r;
  a.region_len = len;
  a.data = r + pg;
  a.end = a.data + data_len;
  a.p = (char *)(((uintptr_t)(a.end - bytes)) & ~(uintptr_t)255);
  a.bytes = bytes;
  poison(a.data, data_len); // uninitialised device memory
  mem.allocs[(uintptr_t)a.p] = a;
  mem.in_use += bytes;
  *out = a.p;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  if (capture_open()) return refuse_in_capture("cudaFree");
  std::lock_guard<std::mutex> g(mem.mu);
  auto it = mem.allocs.find((uintptr_t)p);
  if (it == mem.allocs.end()) fail("cudaFree of %p, which cudaMalloc did not return", p);
  const Alloc a = it->second;
  if (!head_intact(a) || !tail_intact(a))
    fail("cudaFree: bytes around a %zu-byte allocation were overwritten", a.bytes);
  mem.allocs.erase(it);
  mem.in_use -= a.bytes;
  munmap(a.region, a.region_len);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
  std::lock_guard<std::mutex> g(mem.mu);
  const size_t total = mem.limit ? mem.limit : (size_t)16 << 30;
  *total_b = total;
  *free_b = total - mem.in_use;
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
  if (cudemu::record(s, [=] { cudaMemsetAsync(p, value, bytes, nullptr); })) return cudaSuccess;
  if (!bytes) return cudaSuccess;
  std::lock_guard<std::mutex> g(mem.mu);
  if (!find_alloc(p, bytes))
    fail("cudaMemsetAsync of %zu bytes at %p is not inside one device allocation", bytes, p);
  memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s) {
  // Recorded, a copy reads its source when the graph runs (host sources included), as in CUDA.
  if (cudemu::record(s, [=] { cudaMemcpyAsync(dst, src, bytes, kind, nullptr); }))
    return cudaSuccess;
  std::lock_guard<std::mutex> g(mem.mu);
  if (!bytes) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyHostToHost || kind == cudaMemcpyDefault)
    fail("cudaMemcpyAsync kind %d: ganc names the direction of every copy", (int)kind);
  if (dst_dev ? !find_alloc(dst, bytes) : inside_any(dst))
    fail("cudaMemcpyAsync (kind %d) of %zu bytes: the destination %p is %s", (int)kind, bytes, dst,
         dst_dev ? "not inside one device allocation" : "device memory, not host memory");
  if (src_dev ? !find_alloc(src, bytes) : inside_any(src))
    fail("cudaMemcpyAsync (kind %d) of %zu bytes: the source %p is %s", (int)kind, bytes, src,
         src_dev ? "not inside one device allocation" : "device memory, not host memory");
  memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) {
  *p = NULL;
  if (capture_open()) return refuse_in_capture("cudaHostAlloc");
  if (posix_memalign(p, 64, bytes ? bytes : 1) != 0) return set_error(cudaErrorMemoryAllocation);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
  free(p);
  return cudaSuccess;
}

// ---- cuDNN handles (kernels/ctx.cu creates one per context)
// -----------------------------------------

struct cudnnContext {
  cudaStream_t stream;
};

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
  *h = new cudnnContext{nullptr};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUDNN_STATUS_SUCCESS;
}
size_t cudnnGetVersion(void) { return 0; }
const char *cudnnGetErrorString(cudnnStatus_t s) {
  return s == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_NOT_SUPPORTED";
}
