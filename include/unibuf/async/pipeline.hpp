/// @file pipeline.hpp
/// @brief `pipeline<B, Slots>`: frames of a fixed shape flow from CPU writer threads through a GPU
/// stage to consumers, in frame order, through two rings of `Slots` in-flight slots.
///
/// ```
///  writer threads (T)          GPU stage (coroutines on the stage scheduler)        consumer
///  claim input slot  ──────▶  read input ─ claim output ─ flush ─ gpu(in,out,k) ──▶ read output
///  fill(view, k), publish      await fence ─ release input ─ publish output          consume(span, k)
/// ```
/// - **Writers** are real threads (`pipeline_config::writers`); each claims the next input slot
///   (its ring sequence is the frame index `k`), calls `fill(write_only_view<float>, k)` and
///   publishes. A writer waiting for a slot sleeps (`sync_wait` on `claim_async`): no spinning.
/// - **The GPU stage** is a callable `gpu(InBuf& in, OutBuf& out, k) -> fence` (any dispatch:
///   conv2d, saxpy, a user kernel through `unibuf::dispatch`). A submitter coroutine reads input
///   `k`, claims an output slot, flushes the input (the writers' stores reach the device) and calls
///   it; a completer coroutine awaits each fence in order (`when_complete`), makes the output
///   visible to the host (`invalidate`), publishes it and releases the input. Up to `Slots`
///   frames are on the GPU at once. Both run on the *stage scheduler*: the `thread_pool` for the
///   host and Vulkan backends, the `gl_context_loop` for OpenGL (GL calls only on the context
///   thread; GL fences are waited there, and slots are handed on only after their fence, so no
///   other thread ever holds a pending GL fence).
/// - **Consumers** get the outputs in frame order: a `consume(std::span<const float>, k)`
///   callback run by a coroutine on the pool, or, without a callback, `co_await p.next()`.
///
/// Back-pressure is the rings: a slow consumer keeps output slots, the stage waits for one, input
/// slots stay full, the writers wait. Nothing is dropped or overwritten, unless
/// `overflow::drop_oldest`: then a consumer that is ready for its next frame while several
/// finished frames wait takes the newest and the older ones are dropped at once, each counted
/// (`pipeline_stats::frames_dropped`); what it sees is still in frame order. (The ring reuses its
/// slots strictly in sequence, and the slot the GPU stage needs next is the one the consumer holds,
/// so the drop happens when the consumer comes back, not while it holds a frame.)
///
/// Faults: an exception in a writer's `fill`, the GPU stage or a consumer stops the pipeline; `run`
/// rethrows the first one once everything stopped (a library error thrown by a stage has the
/// frame and the stage prepended to its message, with its code kept: `errc::timeout`,
/// `errc::device_lost`; a user exception is rethrown as it was). Nothing is left waiting: every
/// wait of the pipeline is bounded (`pipeline_config::wait_timeout`) and cancellable.
///
/// `request_stop()` **cancels**: it returns at once; frames not yet handed to the GPU are dropped,
/// frames already on the GPU are waited for (bounded) so that no slot is freed while the device
/// uses it, and are then discarded; `run` returns once the writers left their current `fill`.
///
/// Slot memory: `InBuf` (default `upload_buffer<float, B>`: write-only, write-combined, placed by
/// the backend: BAR/zero-copy or staged, as its memory decision says) and `OutBuf` (default
/// `readback_buffer<float, B>`: cached host memory); the decisions and their reasons are in
/// `input_report()` / `output_report()`. How frames reach and leave the GPU stage (`paths()`, each
/// with its reason; `pipeline_config::in_path` / `out_path` force one):
/// - input `direct`: the writers store into the input slot itself, the GPU stage reads it;
///   `staged`: the writers store into a host staging buffer of the slot (system memory,
///   write-combined) and the stage records a copy of it into the slot before the GPU work (the
///   copy engine moves the frame). `automatic` asks the backend's producer plan
///   (`ProducePlanner`: the decision `unibuf::producer` takes for a fill of one frame by one
///   thread, as each writer fills its frame alone) and stages only where it says staging outruns
///   direct stores.
/// - output `direct`: the GPU stage writes the output slot (host memory) itself; `copied`: it
///   writes a device-local buffer of the slot (`device_output`) and the stage records a copy into
///   the output slot after it, in queue order. `automatic` is direct (measured on par, and the
///   copy costs a device buffer per slot), or copied where only the copied path's callable was
///   given.
/// - `pipeline_config::max_in_flight` bounds the frames between a writer's claim and the consumer
///   (the rings alone allow 2 x Slots): a writer waits before filling frame `k` until frame
///   `k - max_in_flight` was taken, so frames do not queue in full rings (lower latency).
///
/// @code
/// unibuf::host_backend dev;
/// unibuf::thread_pool pool(2);
/// unibuf::pipeline<unibuf::host_backend, 3> p(dev, dev, pool, pool, {.input_elements = n, .output_elements = n, .writers = 4},
///     [](unibuf::write_only_view<float> v, std::uint64_t k) { for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(k + i); },
///     [&](auto& in, auto& out, std::uint64_t) { return unibuf::dispatch(dev, kernel, {g}, {}, unibuf::bind(in, unibuf::usage::read),
///                                                                       unibuf::bind(out, unibuf::usage::write)); },
///     [](std::span<const float> out, std::uint64_t k) { use(out, k); });
/// unibuf::pipeline_stats s = unibuf::sync_wait(p.run(1000));
/// @endcode
#pragma once

#include "../buffer/basic_buffer.hpp"
#include "../buffer/view.hpp"
#include "../core/error.hpp"
#include "../core/report.hpp"
#include "../core/timeout.hpp"
#include "../backend/concepts.hpp"
#include "../backend/produce_plan.hpp"
#include "../transfer/ring.hpp"
#include "detail/async_queue.hpp"
#include "ring_awaitable.hpp"
#include "scheduler.hpp"
#include "sync_wait.hpp"
#include "task.hpp"
#include "thread_pool.hpp"
#include "wait_options.hpp"
#include "when_all.hpp"
#include "when_complete.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief What the GPU stage does when every output slot is full.
enum class overflow : std::uint8_t {
    block,        ///< wait for a consumer (default): nothing is ever dropped
    drop_oldest,  ///< a consumer ready for the next frame gets the newest finished one; older waiting ones are dropped, and counted
};

/// @brief How input frames reach the GPU stage (see the file comment of pipeline.hpp).
enum class input_path : std::uint8_t {
    automatic,  ///< as the backend's producer plan decides for one frame and the pipeline's writers (default)
    direct,     ///< the writers store into the input slot, the GPU stage reads it there
    staged,     ///< the writers store into host staging memory, a copy moves the frame into the slot
};

/// @brief How output frames leave the GPU stage (see the file comment of pipeline.hpp).
enum class output_path : std::uint8_t {
    automatic,  ///< direct, unless only the copied path's callable was given (default)
    direct,     ///< the GPU stage writes the output slot (host memory) itself
    copied,     ///< the GPU stage writes a device-local buffer; a copy moves it into the output slot
};

/// @brief Printable name of an input path.
[[nodiscard]] constexpr const char* to_string(input_path p) noexcept {
    switch (p) {
        case input_path::automatic: return "automatic";
        case input_path::direct: return "direct";
        case input_path::staged: return "staged";
    }
    return "?";
}

/// @brief Printable name of an output path.
[[nodiscard]] constexpr const char* to_string(output_path p) noexcept {
    switch (p) {
        case output_path::automatic: return "automatic";
        case output_path::direct: return "direct";
        case output_path::copied: return "copied";
    }
    return "?";
}

/// @brief The paths a pipeline took (never `automatic`) and why.
struct pipeline_paths {
    input_path input = input_path::direct;
    std::string input_reason;
    output_path output = output_path::direct;
    std::string output_reason;
};

/// @brief The shape and behaviour of a pipeline.
struct pipeline_config {
    std::size_t input_elements = 0;   ///< floats per input frame (at least 1)
    std::size_t output_elements = 0;  ///< floats per output frame (at least 1)
    std::size_t writers = 1;          ///< writer threads (at least 1)
    overflow on_overflow = overflow::block;
    input_path in_path = input_path::automatic;     ///< how frames reach the GPU stage
    output_path out_path = output_path::automatic;  ///< how results leave it
    /// @brief Most frames between a writer's claim and the consumer taking them (0: no bound
    /// beyond the rings' 2 x Slots). A writer waits (bounded by `wait_timeout`) before filling.
    std::size_t max_in_flight = 0;
    /// @brief Bound on every single wait (a slot, a fence); running out stops the pipeline with
    /// `errc::timeout` naming the frame and the stage.
    std::chrono::nanoseconds wait_timeout = default_wait_timeout;
};

/// @brief Counters of one `run`.
struct pipeline_stats {
    std::uint64_t frames_in = 0;       ///< frames the writers published
    std::uint64_t frames_gpu = 0;      ///< frames the GPU stage completed and handed on
    std::uint64_t frames_out = 0;      ///< frames the consumers took
    std::uint64_t frames_dropped = 0;  ///< outputs dropped under `overflow::drop_oldest` (0 otherwise): frames_gpu = frames_out + frames_dropped
    std::uint64_t bytes_in = 0;        ///< bytes written by the writers (frames_in x input frame)
    std::uint64_t bytes_out = 0;       ///< bytes the GPU stage produced (frames_gpu x output frame)
    double seconds = 0;                ///< wall time of the run
    double fps = 0;                    ///< frames_out / seconds
    double writer_busy_seconds = 0;    ///< time inside `fill`, summed over the writers
    double gpu_busy_seconds = 0;       ///< time at least one frame was on the GPU (submit to fence seen)
    double consumer_busy_seconds = 0;  ///< time inside `consume` (callback mode)
    /// @brief The busiest stage's busy fraction of the wall time (writers averaged over their
    /// threads): 1.0 when the bottleneck stage never waited for the others (perfect overlap).
    double overlap_efficiency = 0;
};

/// @brief The pipeline (see the file comment).
/// @tparam B backend
/// @tparam Slots in-flight slots of each ring (at least 2)
/// @tparam InBuf input slot buffer of floats with a write-only host view (default `upload_buffer<float, B>`)
/// @tparam OutBuf output slot buffer of floats with a host pointer (default `readback_buffer<float, B>`)
template <class B, std::size_t Slots = 3, class InBuf = upload_buffer<float, B>, class OutBuf = readback_buffer<float, B>>
class pipeline {
    static_assert(Slots >= 2, "unibuf: pipeline<B, Slots>: at least 2 slots (one filling while one is on the GPU)");
    static_assert(std::same_as<typename InBuf::value_type, float> && std::same_as<typename OutBuf::value_type, float>,
                  "unibuf: pipeline: the slot buffers hold floats");
    static_assert(InBuf::host_writable && !InBuf::host_readable,
                  "unibuf: pipeline: the input slots must be write-only (writers get a write_only_view<float>)");

public:
    using backend_type = B;
    using fence_type = typename B::fence;
    using input_ring = ring<InBuf, Slots>;
    using output_ring = ring<OutBuf, Slots>;
    /// @brief `fill(view, k)`: writes input frame `k` (any writer thread).
    using fill_fn = std::function<void(write_only_view<float>, std::uint64_t)>;
    /// @brief `gpu(in, out, k)`: submits the work of frame `k` reading `in`, writing `out`; returns its fence.
    using gpu_fn = std::function<fence_type(InBuf&, OutBuf&, std::uint64_t)>;
    /// @brief The device-local output of a slot on the `copied` output path (no host access is
    /// made to it; on backends that stage device memory it carries an unused staging buffer).
    using device_output = basic_buffer<float, B, access::read_write, coherence::coherent, placement::device, sync::fenced>;
    /// @brief The host staging memory of an input slot on the `staged` input path.
    using input_staging = basic_buffer<float, B, access::write_only, coherence::write_combined, placement::host, sync::fenced>;
    /// @brief `gpu(in, dev_out, k)` of the `copied` output path.
    using gpu_copied_fn = std::function<fence_type(InBuf&, device_output&, std::uint64_t)>;
    /// @brief `consume(out, k)`: reads output frame `k` (frames in order, one call at a time).
    using consume_fn = std::function<void(std::span<const float>, std::uint64_t)>;

    /// @brief One output frame taken by `next()`: valid until released (or destroyed).
    class frame {
    public:
        /// @brief An empty frame (no slot, no data).
        frame() = default;
        /// @brief Takes `o`'s slot; `o` becomes empty (no data, index 0).
        frame(frame&& o) noexcept
            : slot_(std::move(o.slot_)), data_(std::exchange(o.data_, {})), index_(std::exchange(o.index_, 0)) {}
        /// @brief Releases the slot held before, then takes `o`'s; `o` becomes empty.
        frame& operator=(frame&& o) noexcept {
            if (this != &o) {
                slot_ = std::move(o.slot_);
                data_ = std::exchange(o.data_, {});
                index_ = std::exchange(o.index_, 0);
            }
            return *this;
        }
        frame(const frame&) = delete;
        frame& operator=(const frame&) = delete;
        /// @brief Releases the slot (as `release`).
        ~frame() = default;
        /// @brief The frame index.
        [[nodiscard]] std::uint64_t index() const noexcept { return index_; }
        /// @brief The output floats (empty once released).
        [[nodiscard]] std::span<const float> data() const noexcept { return data_; }
        /// @brief Gives the slot back to the GPU stage (the destructor does it too).
        void release() {
            if (slot_) slot_.release();
            data_ = {};
        }

    private:
        friend class pipeline;
        typename output_ring::read_slot slot_;
        std::span<const float> data_;
        std::uint64_t index_ = 0;
    };

    /// @brief Allocates both rings (and the staging / device-local buffers of the paths taken).
    /// `notifier` signals `B`'s fences (the host backend itself, a `vulkan_fence_waiter`, a
    /// `gl_context_loop`); `stage` runs the GPU stage (the pool, or the `gl_context_loop`); `pool`
    /// runs the consumer and resumes the writers' waits (give it at least 2 threads when `consume`
    /// may block: one thread is inside it meanwhile). All must outlive the pipeline. `gpu` runs
    /// the GPU stage on the direct output path (`gpu(InBuf&, OutBuf&, k)`, returning the fence of
    /// the work it submitted); with it alone the output path is direct.
    /// @throws std::system_error invalid_argument (0 elements, 0 writers, no fill or gpu callable,
    ///         output_path::copied forced); the slot allocations' errors
    template <FenceNotifier N, Scheduler Stage>
        requires std::same_as<typename N::fence, fence_type>
    pipeline(B& backend, N& notifier, Stage& stage, thread_pool& pool, pipeline_config cfg, fill_fn fill, gpu_fn gpu,
             consume_fn consume = {})
        : pipeline(backend, notifier, stage, pool, cfg, std::move(fill), std::move(gpu), gpu_copied_fn{}, std::move(consume)) {}

    /// @brief As above, with the GPU stage of both output paths: `gpu` writes the output slot
    /// (direct), `gpu_copied(InBuf&, device_output&, k)` a device-local buffer that the stage then
    /// copies into the slot (copied); either may be empty, not both (a generic lambda may be
    /// passed as both).
    /// @throws std::system_error invalid_argument (as above; a forced output path whose callable
    ///         is empty); the slot allocations' errors
    template <FenceNotifier N, Scheduler Stage>
        requires std::same_as<typename N::fence, fence_type>
    pipeline(B& backend, N& notifier, Stage& stage, thread_pool& pool, pipeline_config cfg, fill_fn fill, gpu_fn gpu,
             gpu_copied_fn gpu_copied, consume_fn consume = {})
        : cfg_(check(cfg, fill)), backend_(&backend), pool_(&pool), fill_(std::move(fill)), gpu_(std::move(gpu)),
          gpu_copied_(std::move(gpu_copied)), consume_(std::move(consume)), in_(backend, cfg_.input_elements),
          out_(backend, cfg_.output_elements), queue_([&stage](std::coroutine_handle<> h) { stage.post(h); }),
          writers_done_([&pool](std::coroutine_handle<> h) { pool.post(h); }) {
        if (!gpu_ && !gpu_copied_) throw_error(errc::invalid_argument, "unibuf: pipeline: the fill and gpu callables must be set");
        choose_paths(backend);
        post_stage_ = [&stage](std::coroutine_handle<> h) { stage.post(h); };
        claim_in_ = [this, &notifier, &pool](wait_options o) { return claim_async(in_, notifier, pool, std::move(o)); };
        read_in_ = [this, &notifier, &stage](wait_options o) { return read_async(in_, notifier, stage, std::move(o)); };
        claim_out_ = [this, &notifier, &stage](wait_options o) { return claim_async(out_, notifier, stage, std::move(o)); };
        read_out_ = [this, &notifier, &pool](wait_options o) { return read_async(out_, notifier, pool, std::move(o)); };
        await_fence_ = [&notifier, &stage](fence_type f, wait_options o) -> task<void> {
            return await_fence(notifier, stage, std::move(f), std::move(o));
        };
    }
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;
    /// @brief A pipeline must not be destroyed while `run` is in progress (stop it and await `run` first).
    ~pipeline() = default;

    /// @brief Runs `frames` frames through the pipeline; `co_await` yields the statistics once
    /// every frame was consumed (or dropped), or rethrows the first fault once everything stopped.
    /// After `request_stop`, it yields the statistics of what ran. One run at a time; a pipeline
    /// may run again (frame indices are the input ring's sequence numbers: they continue from the
    /// last run; what a stopped run left in the slots is discarded at the start).
    /// @throws std::system_error invalid_argument when a run is in progress; the first fault
    [[nodiscard]] task<pipeline_stats> run(std::uint64_t frames) {
        if (running_.exchange(true))
            throw_error(errc::invalid_argument, "unibuf: pipeline::run while another run is in progress");
        begin(frames);
        std::vector<task<void>> parts;
        parts.push_back(submit_loop());
        parts.push_back(complete_loop());
        if (consume_) parts.push_back(consume_loop());
        start_writers();
        co_await when_all(std::move(parts));
        co_await writers_done_.wait();
        for (auto& t : threads_) t.join();
        threads_.clear();
        const pipeline_stats s = statistics();
        std::exception_ptr fault;
        {
            std::lock_guard lk(fault_m_);
            fault = fault_;
        }
        running_ = false;
        if (fault) std::rethrow_exception(fault);
        co_return s;
    }

    /// @brief Pull mode (no consume callback): `co_await p.next()` yields the next output frame
    /// in order, or nothing when the run's frames are all through (or the pipeline stopped).
    /// One caller at a time; it resumes on the pool. Await it alongside `run` (`when_all`): `run`
    /// ends once the GPU stage handed every frame on, possibly before the caller took the last
    /// ones (`statistics().frames_out` is final once `next()` yielded nothing).
    /// @throws std::system_error invalid_argument with a consume callback; the first fault
    [[nodiscard]] task<std::optional<frame>> next() {
        if (consume_) throw_error(errc::invalid_argument, "unibuf: pipeline::next: this pipeline has a consume callback");
        auto slot = co_await take_output();
        if (!slot) {
            rethrow_fault();
            co_return std::nullopt;
        }
        frame f;
        f.index_ = out_index_[slot->index()];
        f.data_ = std::span<const float>((*slot)->data(), cfg_.output_elements);
        f.slot_ = std::move(*slot);
        frames_out_.fetch_add(1, std::memory_order_relaxed);
        note_taken(1);
        co_return f;
    }

    /// @brief Cancels the run in progress (see the file comment); returns at once. Idempotent; a
    /// later `run` starts afresh.
    void request_stop() noexcept {
        stopping_.store(true);
        stop_.request_stop();
        consumer_stop_.request_stop();
        {
            std::lock_guard lk(taken_m_);  // a writer waiting in wait_in_flight sees the stop
        }
        taken_cv_.notify_all();
    }

    /// @brief The statistics so far (the final ones once `run` finished).
    [[nodiscard]] pipeline_stats statistics() const {
        pipeline_stats s;
        s.frames_in = frames_in_.load();
        s.frames_gpu = frames_gpu_.load();
        s.frames_out = frames_out_.load();
        s.frames_dropped = dropped_.load();
        s.bytes_in = s.frames_in * cfg_.input_elements * sizeof(float);
        s.bytes_out = s.frames_gpu * cfg_.output_elements * sizeof(float);
        const auto end = finished_.load() ? end_ : clock::now();
        s.seconds = std::chrono::duration<double>(end - start_).count();
        s.fps = s.seconds > 0 ? static_cast<double>(s.frames_out) / s.seconds : 0;
        s.writer_busy_seconds = static_cast<double>(writer_busy_ns_.load()) * 1e-9;
        s.gpu_busy_seconds = static_cast<double>(gpu_busy_ns_.load()) * 1e-9;
        s.consumer_busy_seconds = static_cast<double>(consumer_busy_ns_.load()) * 1e-9;
        const double busiest = std::max({s.writer_busy_seconds / static_cast<double>(cfg_.writers), s.gpu_busy_seconds,
                                         s.consumer_busy_seconds});
        s.overlap_efficiency = s.seconds > 0 ? busiest / s.seconds : 0;
        return s;
    }

    /// @brief The memory decision of the input slots (what and why).
    [[nodiscard]] const allocation_report& input_report() { return in_.slot(0).report(); }
    /// @brief The memory decision of the output slots (what and why).
    [[nodiscard]] const allocation_report& output_report() { return out_.slot(0).report(); }
    /// @brief The input and output paths taken and why (see the file comment).
    [[nodiscard]] const pipeline_paths& paths() const noexcept { return paths_; }
    /// @brief The configuration.
    [[nodiscard]] const pipeline_config& config() const noexcept { return cfg_; }
    /// @brief The input ring (inspection).
    [[nodiscard]] input_ring& inputs() noexcept { return in_; }
    /// @brief The output ring (inspection).
    [[nodiscard]] output_ring& outputs() noexcept { return out_; }

private:
    using clock = std::chrono::steady_clock;
    using in_read = typename input_ring::read_slot;
    using out_write = typename output_ring::write_slot;
    using out_read = typename output_ring::read_slot;

    struct in_flight {
        in_read in;
        out_write out;
        fence_type fence;
        std::uint64_t index = 0;
        clock::time_point submitted;
    };

    /// @brief Resumes the awaiting coroutine on the stage scheduler.
    struct to_stage {
        const std::function<void(std::coroutine_handle<>)>* post;
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) const { (*post)(h); }
        void await_resume() const noexcept {}
    };

    template <class N, class Stage>
    static task<void> await_fence(N& n, Stage& stage, fence_type f, wait_options o) {
        co_await when_complete(n, f, stage, o);
    }

    static const pipeline_config& check(const pipeline_config& c, const fill_fn& fill) {
        if (c.input_elements == 0 || c.output_elements == 0 || c.writers == 0)
            throw_error(errc::invalid_argument,
                        "unibuf: pipeline of " + std::to_string(c.input_elements) + " input and " +
                            std::to_string(c.output_elements) + " output floats per frame with " +
                            std::to_string(c.writers) + " writer threads: each must be at least 1");
        if (!fill) throw_error(errc::invalid_argument, "unibuf: pipeline: the fill and gpu callables must be set");
        return c;
    }

    // Decides both paths (see the file comment) and allocates what they need.
    void choose_paths(B& backend) {
        paths_.input = cfg_.in_path;
        if (cfg_.in_path == input_path::automatic) {
            paths_.input = input_path::direct;
            const std::uint64_t frame_bytes = static_cast<std::uint64_t>(cfg_.input_elements) * sizeof(float);
            if constexpr (ProducePlanner<B>) {
                if (!in_.slot(0).report().zero_copy) {
                    paths_.input_reason = "the input slots are staged by their own memory decision (their flush copies them)";
                } else {
                    // One writer thread fills a frame: the plan for a fill by one thread (several
                    // writers fill several frames at once, each at a single thread's rate).
                    const produce_plan plan = backend.plan_produce(in_.slot(0).allocation(), frame_bytes, 1u);
                    if (plan.path == produce_path::staged_pipelined) paths_.input = input_path::staged;
                    paths_.input_reason = "the producer's plan for a frame of " + std::to_string(frame_bytes) +
                                          " bytes written by one writer thread: " + plan.reason;
                }
            } else {
                paths_.input_reason = "the backend has no producer plan: the writers store into the input slots";
            }
        } else {
            paths_.input_reason = std::string("forced by pipeline_config::in_path (") + to_string(cfg_.in_path) + ")";
        }

        paths_.output = cfg_.out_path;
        if (cfg_.out_path == output_path::copied && !gpu_copied_)
            throw_error(errc::invalid_argument, "unibuf: pipeline: output_path::copied needs a gpu callable that takes "
                                                "(InBuf&, device_output&, frame index)");
        if (cfg_.out_path == output_path::direct && !gpu_)
            throw_error(errc::invalid_argument, "unibuf: pipeline: output_path::direct needs a gpu callable that takes "
                                                "(InBuf&, OutBuf&, frame index)");
        if (cfg_.out_path == output_path::automatic) {
            paths_.output = output_path::direct;
            if (!gpu_copied_) {
                paths_.output_reason = "the gpu callable takes only the output slot: the GPU writes it directly";
            } else if (!gpu_) {
                paths_.output = output_path::copied;
                paths_.output_reason = "the gpu callable takes only a device-local output: copied into the output slot";
            } else {
                paths_.output_reason = "the GPU writes the output slots directly: shader stores into host memory were "
                                       "measured on par with copy-command copies on a discrete GPU (see "
                                       "bench/RESULTS.md), and a copy costs a device buffer per slot and a command per "
                                       "frame; output_path::copied forces the copy";
            }
        } else {
            paths_.output_reason = std::string("forced by pipeline_config::out_path (") + to_string(cfg_.out_path) + ")";
        }

        if (paths_.input == input_path::staged)
            for (std::size_t i = 0; i < Slots; ++i) staging_.emplace_back(backend, cfg_.input_elements);
        if (paths_.output == output_path::copied)
            while (device_out_.size() < Slots) device_out_.emplace_back(backend, cfg_.output_elements);
    }

    void begin(std::uint64_t frames) {
        frames_ = frames;
        tickets_ = 0;
        frames_in_ = 0;
        frames_gpu_ = 0;
        frames_out_ = 0;
        dropped_ = 0;
        writer_busy_ns_ = 0;
        gpu_busy_ns_ = 0;
        consumer_busy_ns_ = 0;
        stopping_ = false;
        ended_ = false;
        finished_ = false;
        stop_ = std::stop_source{};
        consumer_stop_ = std::stop_source{};
        {
            std::lock_guard lk(fault_m_);
            fault_ = nullptr;
        }
        queue_.reset();
        writers_done_.reset(cfg_.writers);
        // What a stopped run left in the rings (inputs the stage never took, outputs no consumer
        // took) is discarded: nobody else uses the rings between runs.
        while (std::optional<in_read> r = in_.try_read()) r->release();
        while (std::optional<out_read> r = out_.try_read()) r->release();
        {
            std::lock_guard lk(taken_m_);
            taken_ = in_.next_claim_sequence();  // frame indices continue from the last run
        }
        start_ = clock::now();
        last_gpu_done_ = start_;
    }

    // Starts the writer threads; when one cannot start, the run stops as after a fault (the
    // writers not started count as done).
    void start_writers() noexcept {
        for (std::size_t w = 0; w < cfg_.writers; ++w) {
            try {
                threads_.emplace_back([this] { writer_loop(); });
            } catch (...) {
                fault(std::current_exception());
                for (; w < cfg_.writers; ++w) writers_done_.count_down();
                return;
            }
        }
    }

    // How likely a fault is the cause rather than a consequence: a hung device makes the fence
    // wait run out, and then every slot wait behind it; the fence timeout names the cause.
    enum class fault_rank : int { error = 0, fence_timeout = 1, slot_timeout = 2 };

    // Records the root fault and stops everything: of several, the lowest rank, then the first.
    void fault(std::exception_ptr e, fault_rank rank = fault_rank::error) noexcept {
        {
            std::lock_guard lk(fault_m_);
            if (!fault_ || rank < fault_rank_) {
                fault_ = std::move(e);
                fault_rank_ = rank;
            }
        }
        request_stop();
    }
    void rethrow_fault() {
        std::exception_ptr f;
        {
            std::lock_guard lk(fault_m_);
            f = fault_;
        }
        if (f) std::rethrow_exception(f);
    }
    [[nodiscard]] static bool is_timeout(const std::system_error& e) noexcept {
        return e.code() == make_error_code(errc::timeout);
    }
    // A cancellation while stopping is the stop itself, not a fault.
    [[nodiscard]] bool stop_cancellation(const std::system_error& e) const noexcept {
        return is_cancelled(e) && stopping_.load();
    }
    // A library error of `stage` at frame `k`, with its code kept (and its message said once).
    static std::exception_ptr named(const std::system_error& e, const char* stage, std::uint64_t k) {
        return std::make_exception_ptr(std::system_error(e.code(), std::string("unibuf: pipeline: frame ") + std::to_string(k) +
                                                                       ", " + stage + ": " + detail::message_of(e)));
    }

    static std::int64_t ns_since(clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t).count();
    }

    // ---- writers (threads) ------------------------------------------------------------------

    void writer_loop() noexcept {
        std::uint64_t k = 0;
        try {
            for (;;) {
                if (stopping_.load()) break;
                if (tickets_.fetch_add(1) >= frames_) break;
                const wait_options opt{cfg_.wait_timeout, stop_.get_token()};
                typename input_ring::write_slot slot = sync_wait(claim_in_(opt));
                k = slot.sequence();
                if (cfg_.max_in_flight != 0 && !wait_in_flight(k)) break;
                const auto t0 = clock::now();
                if (paths_.input == input_path::staged) {
                    fill_(staging_[slot.index()].view(), k);
                } else {
                    fill_(slot->view(), k);
                }
                writer_busy_ns_.fetch_add(ns_since(t0), std::memory_order_relaxed);
                slot.publish();
                frames_in_.fetch_add(1, std::memory_order_relaxed);
            }
        } catch (const std::system_error& e) {
            if (!stop_cancellation(e)) fault(named(e, "writer", k), is_timeout(e) ? fault_rank::slot_timeout : fault_rank::error);
        } catch (...) {
            fault(std::current_exception());
        }
        writers_done_.count_down();
    }

    // Waits (bounded, cancelled by a stop) until frame `k - max_in_flight` was taken by a
    // consumer; false when the pipeline stops meanwhile.
    bool wait_in_flight(std::uint64_t k) {
        std::unique_lock lk(taken_m_);
        const auto ok = taken_cv_.wait_until(lk, detail::deadline_after(cfg_.wait_timeout), [&] {
            return stopping_.load() || taken_ + cfg_.max_in_flight > k;
        });
        if (!ok)
            throw_error(errc::timeout, "unibuf: pipeline: frame " + std::to_string(k) + " waited more than " +
                                           detail::ms_text(cfg_.wait_timeout) + " ms for frame " +
                                           std::to_string(k - cfg_.max_in_flight) + " to be consumed (max_in_flight " +
                                           std::to_string(cfg_.max_in_flight) + ")");
        return !stopping_.load();
    }
    // Counts `n` frames taken by a consumer (or dropped) and wakes the writers waiting for them.
    void note_taken(std::uint64_t n) {
        if (cfg_.max_in_flight == 0) return;
        {
            std::lock_guard lk(taken_m_);
            taken_ += n;
        }
        taken_cv_.notify_all();
    }

    // ---- GPU stage (coroutines on the stage scheduler) ---------------------------------------

    task<void> submit_loop() {
        co_await to_stage{&post_stage_};
        std::uint64_t k = 0;
        try {
            for (std::uint64_t n = 0; n < frames_; ++n) {
                const wait_options opt{cfg_.wait_timeout, stop_.get_token()};
                in_read in = co_await read_in_(opt);
                k = in.sequence();
                out_write out = co_await claim_out_(opt);
                const auto t = clock::now();
                if (paths_.input == input_path::staged) {
                    input_staging& st = staging_[in.index()];
                    (void)st.flush();      // the writers' stores reach the device (non-coherent memory)
                    (void)in->copy_from(st);  // queued before the GPU work, which reads the slot after it
                } else {
                    (void)in->flush();  // the writers' stores reach the device (staging copy / flush)
                }
                fence_type f{};
                if (paths_.output == output_path::copied) {
                    device_output& d = device_out_[out.index()];
                    (void)gpu_copied_(*in, d, k);
                    f = out->copy_from(d);  // queued after the GPU work: its fence covers both
                } else {
                    f = gpu_(*in, *out, k);
                }
                queue_.push(in_flight{std::move(in), std::move(out), std::move(f), k, t});
            }
        } catch (const std::system_error& e) {
            if (!stop_cancellation(e)) fault(named(e, "gpu stage (submit)", k), is_timeout(e) ? fault_rank::slot_timeout : fault_rank::error);
        } catch (...) {
            fault(std::current_exception());
        }
        queue_.close();
    }

    task<void> complete_loop() {
        co_await to_stage{&post_stage_};
        for (;;) {
            std::optional<in_flight> item = co_await queue_.pop();
            if (!item) break;
            try {
                // No stop token: in-flight device work is always waited for (bounded) before its
                // slots are freed.
                const wait_options opt{cfg_.wait_timeout, {}};
                co_await await_fence_(item->fence, opt);
                const auto now = clock::now();
                const auto from = std::max(item->submitted, last_gpu_done_);
                if (now > from)
                    gpu_busy_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(now - from).count(),
                                           std::memory_order_relaxed);
                last_gpu_done_ = now;
                if (!stopping_.load()) {
                    item->out->invalidate();  // on the stage thread: GL calls stay on the context thread
                    out_index_[item->out.index()] = item->index;
                    item->out.publish();
                    frames_gpu_.fetch_add(1, std::memory_order_relaxed);
                }
                item->in.release();
            } catch (const std::system_error& e) {
                fault(named(e, "gpu stage (completion)", item->index), is_timeout(e) ? fault_rank::fence_timeout : fault_rank::error);
            } catch (...) {
                fault(std::current_exception());
            }
        }
        ended_.store(true);
        consumer_stop_.request_stop();  // wakes a consumer waiting for an output that will not come
        finished_mark();
    }

    void finished_mark() {
        if (!consume_) {
            end_ = clock::now();
            finished_.store(true);
        }
    }

    // ---- consumers ----------------------------------------------------------------------------

    // The next output in order; empty when the run ended (all handed on) or stopped.
    task<std::optional<out_read>> take_output() {
        for (;;) {
            if (stopping_.load()) co_return std::nullopt;
            const wait_options opt{cfg_.wait_timeout, consumer_stop_.get_token()};
            bool cancelled = false;
            try {
                out_read r = co_await read_out_(opt);
                if (cfg_.on_overflow == overflow::drop_oldest) {
                    // Newer outputs are waiting: drop the older ones, take the newest.
                    while (std::optional<out_read> newer = out_.try_read()) {
                        r.release();
                        dropped_.fetch_add(1, std::memory_order_relaxed);
                        note_taken(1);
                        r = std::move(*newer);
                    }
                }
                co_return std::optional<out_read>(std::move(r));
            } catch (const std::system_error& e) {
                if (!is_cancelled(e)) throw;
                cancelled = true;
            }
            if (cancelled) {
                if (stopping_.load() || !ended_.load()) co_return std::nullopt;
                // The run ended: everything was published before the end, so what is left is ready now.
                co_return out_.try_read();
            }
        }
    }

    task<void> consume_loop() {
        co_await pool_->schedule();
        std::uint64_t k = 0;
        try {
            for (;;) {
                std::optional<out_read> r = co_await take_output();
                if (!r) break;
                k = out_index_[r->index()];
                note_taken(1);
                const auto t0 = clock::now();
                consume_(std::span<const float>((*r)->data(), cfg_.output_elements), k);
                consumer_busy_ns_.fetch_add(ns_since(t0), std::memory_order_relaxed);
                frames_out_.fetch_add(1, std::memory_order_relaxed);
                r->release();
            }
        } catch (const std::system_error& e) {
            fault(named(e, "consumer", k), is_timeout(e) ? fault_rank::slot_timeout : fault_rank::error);
        } catch (...) {
            fault(std::current_exception());
        }
        end_ = clock::now();
        finished_.store(true);
    }

    pipeline_config cfg_;
    B* backend_;
    thread_pool* pool_;
    fill_fn fill_;
    gpu_fn gpu_;                // the direct output path's callable (may be empty: then copied only)
    gpu_copied_fn gpu_copied_;  // the copied output path's callable (may be empty: then direct only)
    consume_fn consume_;
    input_ring in_;
    output_ring out_;
    pipeline_paths paths_;
    std::vector<input_staging> staging_;     // staged input path: one per input slot
    std::vector<device_output> device_out_;  // copied output path: one per output slot
    std::array<std::uint64_t, Slots> out_index_{};  // frame index of each output slot (set before publish)

    // Erased from the constructor's notifier and schedulers.
    std::function<void(std::coroutine_handle<>)> post_stage_;
    std::function<task<typename input_ring::write_slot>(wait_options)> claim_in_;
    std::function<task<in_read>(wait_options)> read_in_;
    std::function<task<out_write>(wait_options)> claim_out_;
    std::function<task<out_read>(wait_options)> read_out_;
    std::function<task<void>(fence_type, wait_options)> await_fence_;

    detail::async_queue<in_flight> queue_;
    detail::async_latch writers_done_;
    std::vector<std::thread> threads_;

    std::atomic<bool> running_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> ended_{false};
    std::atomic<bool> finished_{false};
    std::stop_source stop_;
    std::stop_source consumer_stop_;
    std::mutex fault_m_;
    std::exception_ptr fault_;
    fault_rank fault_rank_ = fault_rank::error;

    std::uint64_t frames_ = 0;
    std::atomic<std::uint64_t> tickets_{0};
    std::atomic<std::uint64_t> frames_in_{0};
    std::atomic<std::uint64_t> frames_gpu_{0};
    std::atomic<std::uint64_t> frames_out_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::int64_t> writer_busy_ns_{0};
    std::atomic<std::int64_t> gpu_busy_ns_{0};
    std::atomic<std::int64_t> consumer_busy_ns_{0};
    std::mutex taken_m_;
    std::condition_variable taken_cv_;
    std::uint64_t taken_ = 0;  // first frame of the run + frames consumed or dropped since (max_in_flight; guarded by taken_m_)
    clock::time_point start_{};
    clock::time_point end_{};
    clock::time_point last_gpu_done_{};  // completer only
};

} // namespace unibuf
