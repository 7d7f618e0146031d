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
 * even if that program is itself a shared object).
 *
 * Structs that cross the ABI (docs/architecture.md, "ABI") are of four
 * kinds, and each struct's comment says which:
 *  - filled by the program, read by the library (coap_context_config_t,
 *    coap_tx_params_t, coap_request_opts_t, coap_transport_t): versioned.
 *    Each has COAP_<NAME>_V1, V2, ... (a frozen layout each) and
 *    COAP_<NAME>_VERSION, the one this header declares; the function is
 *    exported as <name>_versioned(int version, ...) and called through a
 *    macro of the plain name that passes COAP_<NAME>_VERSION. The library
 *    reads only the fields the caller's version has and uses the defaults
 *    for newer ones;
 *  - allocated by the program, filled by the library (coap_stats_t,
 *    coap_diag_t, coap_handshake_report_t, coap_probe_result_t,
 *    coap_response_copy_t, coap_dtls_cid_info_t, coap_dtls_cid_stats_t):
 *    versioned the same way; the library writes
 *    only the bytes of the caller's version;
 *  - made by the library and handed over by pointer (coap_reply_t,
 *    coap_cause_info_t, coap_option_info_t; coap_diag_t through
 *    coap_reply_t.diag): no version; fields are only ever appended, so a
 *    program reads the ones it knows;
 *  - small value types used in arrays or everywhere in the wire API
 *    (coap_address_t, coap_msg_t, coap_option_t, coap_block_t,
 *    coap_uri_t, coap_link_attr_t): frozen; changing one changes the
 *    SONAME.
 * A version this library does not know (a program built against a newer
 * header, or below 1) is refused with COAP_E_INVALID_ARG and logged when
 * there is a context to log to; nothing is read or written. Enum values
 * are only ever added at the end. */
#ifndef COAPS_EXPORT_H
#define COAPS_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define COAPS_API __attribute__((visibility("default")))
#else
#define COAPS_API
#endif

#endif
