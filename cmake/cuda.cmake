# CUDA detection. CTXLAB_CUDA=AUTO enables CUDA when nvcc is found; ON requires it; OFF skips it.
# Device code is built for sm_90a (Hopper, wgmma/TMA-capable) and sm_80, plus compute_80 PTX for newer GPUs.
set(CTXLAB_HAVE_CUDA OFF)
if(NOT CTXLAB_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(_ctx_nvcc nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
    if(_ctx_nvcc)
      set(CMAKE_CUDA_COMPILER ${_ctx_nvcc})
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Explicit -gencode flags: the 'a' (arch-specific) targets are spelled reliably this way.
    set(CMAKE_CUDA_ARCHITECTURES OFF)
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc 13's C++20 flag; teach it, so targets' CXX_STANDARD 20 applies.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    string(APPEND CMAKE_CUDA_FLAGS " --expt-relaxed-constexpr")
    find_package(CUDAToolkit REQUIRED)
    set(CTXLAB_CUDA_GENCODE
        -gencode=arch=compute_90a,code=sm_90a
        -gencode=arch=compute_80,code=sm_80
        -gencode=arch=compute_80,code=compute_80)
    # e.g. -DCTXLAB_CUDA_GENCODE_ONLY=-gencode=arch=compute_90a,code=sm_90a for a quicker H100-only build
    set(CTXLAB_CUDA_GENCODE_ONLY "" CACHE STRING "Replace the default -gencode list (semicolon-separated)")
    if(CTXLAB_CUDA_GENCODE_ONLY)
      set(CTXLAB_CUDA_GENCODE ${CTXLAB_CUDA_GENCODE_ONLY})
    endif()
    set(CTXLAB_HAVE_CUDA ON)
    message(STATUS "ctxlab: CUDA enabled (${CMAKE_CUDA_COMPILER}, ${CMAKE_CUDA_COMPILER_VERSION})")
  elseif(CTXLAB_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ctxlab: CTXLAB_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "ctxlab: CUDA not found, building CPU only")
  endif()
else()
  message(STATUS "ctxlab: CUDA disabled (CTXLAB_CUDA=OFF)")
endif()
