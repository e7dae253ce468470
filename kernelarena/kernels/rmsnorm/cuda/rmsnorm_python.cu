// CPython binding of the RMSNorm kernels in rmsnorm.cuh: the library's launcher (kernelarena.kernels.rmsnorm).
//
// One function, called with plain integers (data pointers, strides, sizes, the stream) and a float:
//   launch(fused, dtype, x, x_stride, residual, residual_stride, weight, out, out_stride,
//          residual_out, residual_out_stride, rows, hidden, eps, stream[, threads_per_row[, pdl]]) -> None
// dtype: 0 bfloat16, 1 float16; threads_per_row: 0 or left out picks the default (rmsnorm.cuh), else a power of
// two in [8, 1024] (`benchmarks/bench_rmsnorm.py --sweep` tries them); pdl: 1 launches with programmatic dependent
// launch (sm90 and newer only: the caller checks the device). Without torch's headers the module builds
// in seconds, and a call is one vectorcall with no tensor unpacking: the host cost of a launch is the argument
// conversion and the kernel launch itself. The caller (the library) has checked shapes, dtypes and devices, and
// makes the tensors' device current; the kernel runs on ``stream`` in the current context.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "rmsnorm.cuh"

namespace {

constexpr Py_ssize_t kArgs = 15;  // then optional: threads_per_row, pdl

bool as_pointer(PyObject* obj, void** out) {
  *out = PyLong_AsVoidPtr(obj);
  return !(*out == nullptr && PyErr_Occurred());
}

bool as_int64(PyObject* obj, int64_t* out) {
  *out = PyLong_AsLongLong(obj);
  return !(*out == -1 && PyErr_Occurred());
}

PyObject* launch(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < kArgs || nargs > kArgs + 2) {
    PyErr_Format(PyExc_TypeError, "launch() takes %zd to %zd arguments, got %zd", kArgs, kArgs + 2, nargs);
    return nullptr;
  }
  using kernelarena_rmsnorm::RmsnormParams;
  RmsnormParams p{};
  int64_t fused, dtype, hidden, stream, threads = 0, pdl = 0;
  void* weight;
  if (!as_int64(args[0], &fused) || !as_int64(args[1], &dtype) || !as_pointer(args[2], const_cast<void**>(&p.x)) ||
      !as_int64(args[3], &p.x_row_stride) || !as_pointer(args[4], const_cast<void**>(&p.residual)) ||
      !as_int64(args[5], &p.residual_row_stride) || !as_pointer(args[6], &weight) || !as_pointer(args[7], &p.out) ||
      !as_int64(args[8], &p.out_row_stride) || !as_pointer(args[9], &p.residual_out) ||
      !as_int64(args[10], &p.residual_out_row_stride) || !as_int64(args[11], &p.rows) ||
      !as_int64(args[12], &hidden) || !as_int64(args[14], &stream) ||
      (nargs > kArgs && !as_int64(args[15], &threads)) || (nargs > kArgs + 1 && !as_int64(args[16], &pdl)))
    return nullptr;
  p.weight = weight;
  const double eps = PyFloat_AsDouble(args[13]);
  if (eps == -1.0 && PyErr_Occurred()) return nullptr;
  if (hidden <= 0 || hidden > kernelarena_rmsnorm::kMaxHidden || p.rows < 0) {
    PyErr_Format(PyExc_ValueError, "rows %lld x hidden %lld: hidden must be in 1..%d", static_cast<long long>(p.rows),
                 static_cast<long long>(hidden), kernelarena_rmsnorm::kMaxHidden);
    return nullptr;
  }
  if (dtype != 0 && dtype != 1) {
    PyErr_Format(PyExc_ValueError, "dtype code %lld: 0 (bfloat16) or 1 (float16)", static_cast<long long>(dtype));
    return nullptr;
  }
  if (threads != 0 && (threads < 8 || threads > 1024 || (threads & (threads - 1)) != 0)) {
    PyErr_Format(PyExc_ValueError, "threads_per_row %lld: 0 (the default) or a power of two in 8..1024",
                 static_cast<long long>(threads));
    return nullptr;
  }
  p.hidden = static_cast<int>(hidden);
  p.eps = static_cast<float>(eps);
  if (p.rows == 0) Py_RETURN_NONE;
  auto s = reinterpret_cast<cudaStream_t>(stream);
  const int tpr = static_cast<int>(threads);
  cudaError_t err;
  if (dtype == 0)
    err = fused ? kernelarena_rmsnorm::launch_rmsnorm<__nv_bfloat16, true>(p, tpr, s, pdl != 0)
                : kernelarena_rmsnorm::launch_rmsnorm<__nv_bfloat16, false>(p, tpr, s, pdl != 0);
  else
    err = fused ? kernelarena_rmsnorm::launch_rmsnorm<__half, true>(p, tpr, s, pdl != 0)
                : kernelarena_rmsnorm::launch_rmsnorm<__half, false>(p, tpr, s, pdl != 0);
  if (err != cudaSuccess) {
    PyErr_Format(PyExc_RuntimeError, "rmsnorm kernel launch failed: %s", cudaGetErrorString(err));
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"launch", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(launch)), METH_FASTCALL,
     "launch(fused, dtype, x, x_stride, residual, residual_stride, weight, out, out_stride, residual_out, "
     "residual_out_stride, rows, hidden, eps, stream[, threads_per_row[, pdl]]): RMSNorm (fused: residual add "
     "first) on a CUDA stream; pdl=1: programmatic dependent launch (sm90+)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "kernelarena_rmsnorm_launch", "RMSNorm kernels, launched from Python.",
                      -1, methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_kernelarena_rmsnorm_launch(void) { return PyModule_Create(&module); }
