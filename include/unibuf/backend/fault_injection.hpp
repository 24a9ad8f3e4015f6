/// @file fault_injection.hpp
/// @brief `fault_injector`: makes a backend fail at its N-th call of one kind (allocate, map,
/// flush, submit, wait, device loss), for tests that walk every failure path of a scenario.
///
/// A backend that supports it takes a `std::shared_ptr<fault_injector>` in its options (the host
/// backend: `host_backend::options::faults`) and asks `hit(point)` at each call of that kind; no
/// other code path of the library changes. Without an injector (the default) the cost is one null
/// pointer test per call. What each point does on the host backend:
///
/// | point | counted at | the failure |
/// |---|---|---|
/// | `allocate` | every allocation | `errc::out_of_memory`, as a full heap |
/// | `map` | every allocation, after its memory was reserved (the host view is set up) | `errc::mapping_failed` |
/// | `flush` | every `flush` and `invalidate` | `errc::out_of_memory`, as vkFlush/InvalidateMappedMemoryRanges may |
/// | `submit` | every submission (dispatch, copy, staging copy) | `errc::out_of_memory`, nothing queued, as vkQueueSubmit may |
/// | `wait` | every `wait` on a fence not yet complete | the wait reports a timeout at once (`false`) |
/// | `device_lost` | every submission | the device is lost from then on: that submission and all later ones throw `errc::device_lost`; work still queued never runs, waits for its fences throw `errc::device_lost` and pending completion callbacks receive that error |
///
/// Every injected error's message names the backend, the call, its number and what was asked
/// ("unibuf: host_backend: injected fault: submit call #3 (a dispatch of 4 bindings)").
///
/// The Vulkan backend (`vulkan_backend::options::faults`), where the driver cannot be made to fail:
///
/// | point | counted at | the failure |
/// |---|---|---|
/// | `allocate` | every vkAllocateMemory (device memory, and the staging memory of a staged allocation) | `errc::out_of_memory`, as VK_ERROR_OUT_OF_DEVICE_MEMORY; what was made before is freed |
/// | `map` | every vkMapMemory (once per allocation: mappings are persistent) | `errc::mapping_failed`, as VK_ERROR_MEMORY_MAP_FAILED |
/// | `flush` | every `flush` and `invalidate` (vkFlush/InvalidateMappedMemoryRanges or the staging copy) | `errc::out_of_memory` |
/// | `submit` | every vkQueueSubmit of the timeline (a split copy counts once) | `errc::out_of_memory`, as VK_ERROR_OUT_OF_DEVICE_MEMORY; nothing is submitted, the command buffer and descriptor sets are recycled |
/// | `wait` | every `wait` and `wait_or_wake` (the fence waiter's) on a fence not complete | the wait reports a timeout at once (`false`, `vulkan_wait_result::timeout`) |
/// | `device_lost` | every vkQueueSubmit | as VK_ERROR_DEVICE_LOST, through the backend's own path (`errc::device_lost`): that submission (nothing submitted) and all later ones throw; `is_complete`/`wait`/`wait_or_wake` for values not complete throw; the device still runs what was submitted before, and the backend's destructor waits for it (bounded) so that nothing is destroyed in use |
///
/// The OpenGL backend (`gl_backend::options::faults`); a lost device acts as a lost context
/// (GL_CONTEXT_LOST, robustness):
///
/// | point | counted at | the failure |
/// |---|---|---|
/// | `allocate` | every glBufferStorage (buffer and staging buffer) or glBufferData (shadow mode) | `errc::out_of_memory`, as GL_OUT_OF_MEMORY; the buffers made are deleted |
/// | `map` | every glMapBufferRange (persistent and staged modes) | `errc::mapping_failed` |
/// | `flush` | every `flush` and `invalidate` of at least one byte | `errc::out_of_memory` |
/// | `submit` | every dispatch, copy and staging copy, before any GL command | `errc::out_of_memory`, nothing issued |
/// | `wait` | every bounded wait (`wait`, `wait_idle`, the waits of `invalidate`) for a fence not seen signaled yet | a timeout at once |
/// | `device_lost` | every dispatch, copy and staging copy | `errc::device_lost` from then on for every submission, flush, invalidate and allocation, and for every wait on a fence not complete |
///
/// @code
/// auto faults = std::make_shared<unibuf::fault_injector>();
/// unibuf::host_backend dev({.faults = faults});
/// faults->arm(unibuf::fault_point::submit, 2);   // the 2nd submission fails
/// @endcode
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace unibuf {

/// @brief The kinds of backend call a `fault_injector` can make fail (see the file comment).
enum class fault_point : std::uint8_t { allocate, map, flush, submit, wait, device_lost };

/// @brief Number of `fault_point` values.
inline constexpr std::size_t fault_point_count = 6;

/// @brief Printable name of a fault point ("allocate", "map", ...).
[[nodiscard]] constexpr std::string_view to_string(fault_point p) noexcept {
    switch (p) {
        case fault_point::allocate: return "allocate";
        case fault_point::map: return "map";
        case fault_point::flush: return "flush";
        case fault_point::submit: return "submit";
        case fault_point::wait: return "wait";
        case fault_point::device_lost: return "device_lost";
    }
    return "unknown";
}

/// @brief Counts a backend's calls per `fault_point` and fails the armed one (see the file
/// comment). Thread-safe; each armed point fails once, then disarms itself.
class fault_injector {
public:
    /// @brief Makes the `nth` call (1-based, counted from now) of kind `p` fail; 0 disarms `p`.
    void arm(fault_point p, std::uint64_t nth) noexcept {
        auto& s = slot(p);
        s.armed.store(nth == 0 ? 0 : s.calls.load(std::memory_order_relaxed) + nth, std::memory_order_relaxed);
    }
    /// @brief Disarms every point (counts stay).
    void disarm() noexcept {
        for (auto& s : slots_) s.armed.store(0, std::memory_order_relaxed);
    }
    /// @brief Counts one call of kind `p`; true when it is the armed one (which disarms `p`).
    /// `number` receives the call's number (1-based, since the injector was made).
    [[nodiscard]] bool hit(fault_point p, std::uint64_t* number = nullptr) noexcept {
        auto& s = slot(p);
        const std::uint64_t n = s.calls.fetch_add(1, std::memory_order_relaxed) + 1;
        if (number != nullptr) *number = n;
        std::uint64_t want = n;
        if (s.armed.load(std::memory_order_relaxed) != n ||
            !s.armed.compare_exchange_strong(want, 0, std::memory_order_relaxed))
            return false;
        injected_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    /// @brief Calls of kind `p` counted so far.
    [[nodiscard]] std::uint64_t calls(fault_point p) const noexcept {
        return slots_[static_cast<std::size_t>(p)].calls.load(std::memory_order_relaxed);
    }
    /// @brief Failures injected so far (all kinds).
    [[nodiscard]] std::uint64_t injected() const noexcept { return injected_.load(std::memory_order_relaxed); }
    /// @brief True while `p` is armed and its call has not come yet.
    [[nodiscard]] bool armed(fault_point p) const noexcept {
        return slots_[static_cast<std::size_t>(p)].armed.load(std::memory_order_relaxed) != 0;
    }

    /// @brief The message prefix of an injected failure: "<backend>: injected fault: <point> call #<n>".
    [[nodiscard]] static std::string describe(std::string_view backend, fault_point p, std::uint64_t n) {
        return "unibuf: " + std::string(backend) + ": injected fault: " + std::string(to_string(p)) + " call #" +
               std::to_string(n);
    }
    /// @brief Counts one call of kind `p` on `f` (null: no injector, nothing counted); when it is
    /// the armed one, the message of its failure, `describe(backend, p, n) + " (" + what() + ")"`,
    /// else an empty string (`what` is called only then). The one place where the backends'
    /// injected failures get their words.
    template <class What>
    [[nodiscard]] static std::string failure(fault_injector* f, std::string_view backend, fault_point p, What&& what) {
        std::uint64_t n = 0;
        if (f == nullptr || !f->hit(p, &n)) return {};
        return describe(backend, p, n) + " (" + std::string(what()) + ")";
    }

private:
    struct counter {
        std::atomic<std::uint64_t> calls{0};
        std::atomic<std::uint64_t> armed{0};  // the call number that fails; 0: none
    };
    counter& slot(fault_point p) noexcept { return slots_[static_cast<std::size_t>(p)]; }

    std::array<counter, fault_point_count> slots_{};
    std::atomic<std::uint64_t> injected_{0};
};

} // namespace unibuf
