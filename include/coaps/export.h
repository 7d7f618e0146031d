/* coaps — which functions the shared library exports.
 *
 * The library is built with hidden visibility by default
 * (C_VISIBILITY_PRESET hidden in CMakeLists.txt): only a function declared
 * with COAPS_API in a public header is in libcoaps.so's dynamic symbol
 * table, so the internals under src/ stay internal and free to change.
 * tests/interop/exported_symbols.sh fails when the exported set and the
 * COAPS_API declarations differ, either way.
 *
 * The same attribute is right for the three ways the header is read:
 * building the library (the definitions take the declaration's
 * visibility), a program using the shared library, and one linking the
 * static library (its coap_ functions stay visible, its internals hidden
 * even if that program is itself a shared object). */
#ifndef COAPS_EXPORT_H
#define COAPS_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define COAPS_API __attribute__((visibility("default")))
#else
#define COAPS_API
#endif

#endif
