/// @file demo_png.hpp
/// @brief The pipeline demo's image writer: planar float frames (NCHW, one image, 1 or 3 channels)
/// to 8-bit PNG files through stb_image_write (Debian's libstb-dev). Include it in one translation
/// unit only (it compiles stb's writer into that unit, with internal linkage).
#pragma once

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace demo {

/// @brief How float samples become bytes.
enum class tone : std::uint8_t {
    unit,    ///< [0, 1] to [0, 255], clamped (images whose values are intensities)
    signed_  ///< per channel, 0 to mid grey, +-(99th percentile of |v| in that channel) to 255 / 0, clamped beyond (edge responses)
};

/// @brief `planes` (channels x height x width floats, planar) as 8-bit pixels, interleaved.
/// @param channels 1 (grey) or 3 (RGB)
/// @throws std::invalid_argument when the sizes do not match (the message names both)
inline std::vector<unsigned char> to_pixels(std::span<const float> planes, std::size_t channels, std::size_t width,
                                            std::size_t height, tone how) {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument("to_pixels: " + std::to_string(channels) + " channels; 1 or 3 are written");
    if (width == 0 || height == 0 || width > 65535 || height > 65535)
        throw std::invalid_argument("to_pixels: " + std::to_string(width) + "x" + std::to_string(height) +
                                    " pixels; each side must be 1 to 65535");
    const std::size_t plane = width * height;  // below 2^32: both sides are below 2^16
    if (planes.size() < plane * channels)
        throw std::invalid_argument("to_pixels: " + std::to_string(planes.size()) + " floats given; " +
                                    std::to_string(channels) + " planes of " + std::to_string(width) + "x" +
                                    std::to_string(height) + " need " + std::to_string(plane * channels));
    std::vector<unsigned char> pixels(plane * channels);
    for (std::size_t c = 0; c < channels; ++c) {
        const std::span<const float> p = planes.subspan(c * plane, plane);
        float scale = 1.0f, offset = 0.0f;
        if (how == tone::signed_) {
            // The 99th percentile of |v| maps to 0 / 255: a few strong edges (the frame's border
            // against the zero padding) do not flatten everything else to grey.
            std::vector<float> mags;
            mags.reserve(p.size());
            for (float v : p)
                if (std::isfinite(v)) mags.push_back(std::fabs(v));
            float peak = 0.0f;
            if (!mags.empty()) {
                const auto at = mags.begin() + static_cast<std::ptrdiff_t>(mags.size() * 99 / 100);
                std::nth_element(mags.begin(), at, mags.end());
                peak = *at;
            }
            scale = peak > 0.0f ? 0.5f / peak : 0.0f;
            offset = 0.5f;
        }
        for (std::size_t i = 0; i < plane; ++i) {
            float v = p[i] * scale + offset;
            if (!std::isfinite(v)) v = 0.0f;
            v = std::clamp(v, 0.0f, 1.0f);
            pixels[i * channels + c] = static_cast<unsigned char>(std::lround(v * 255.0f));
        }
    }
    return pixels;
}

/// @brief Writes interleaved 8-bit `pixels` (channels x width x height bytes) as a PNG at `path`.
/// @throws std::invalid_argument when `pixels` is smaller than the image; std::runtime_error when
///         the file cannot be written (the message names the path)
inline void write_png(const std::string& path, std::span<const unsigned char> pixels, std::size_t channels,
                      std::size_t width, std::size_t height) {
    if (channels == 0 || channels > 4 || width == 0 || height == 0 || width > 65535 || height > 65535 ||
        pixels.size() < width * height * channels)
        throw std::invalid_argument("write_png " + path + ": " + std::to_string(pixels.size()) + " bytes for " +
                                    std::to_string(width) + "x" + std::to_string(height) + " pixels of " +
                                    std::to_string(channels) + " channels (1 to 4 channels, sides 1 to 65535)");
    if (stbi_write_png(path.c_str(), static_cast<int>(width), static_cast<int>(height), static_cast<int>(channels),
                       pixels.data(), static_cast<int>(width * channels)) == 0)
        throw std::runtime_error("write_png: could not write " + path);
}

/// @brief Writes `planes` (channels x height x width floats, planar) as an 8-bit PNG at `path`.
/// @throws as `to_pixels` and the byte overload
inline void write_png(const std::string& path, std::span<const float> planes, std::size_t channels, std::size_t width,
                      std::size_t height, tone how) {
    write_png(path, to_pixels(planes, channels, width, height, how), channels, width, height);
}

/// @brief Writes two RGB images of one size side by side, `gap` white columns between them.
/// @throws as `to_pixels` and `write_png`
inline void write_png_pair(const std::string& path, std::span<const float> left, tone left_tone,
                           std::span<const float> right, tone right_tone, std::size_t width, std::size_t height,
                           std::size_t gap = 8) {
    const std::vector<unsigned char> a = to_pixels(left, 3, width, height, left_tone);
    const std::vector<unsigned char> b = to_pixels(right, 3, width, height, right_tone);
    const std::size_t out_w = 2 * width + gap;
    std::vector<unsigned char> pixels(out_w * height * 3, 255);
    for (std::size_t y = 0; y < height; ++y) {
        std::copy_n(a.begin() + static_cast<std::ptrdiff_t>(y * width * 3), width * 3,
                    pixels.begin() + static_cast<std::ptrdiff_t>(y * out_w * 3));
        std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(y * width * 3), width * 3,
                    pixels.begin() + static_cast<std::ptrdiff_t>((y * out_w + width + gap) * 3));
    }
    write_png(path, pixels, 3, out_w, height);
}

} // namespace demo
