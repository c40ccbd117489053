/**
 * @module
 * apprun's version, reported by `apprun version`, in STATUS= lines and in handoff state.
 */
export const APPRUN_VERSION = "0.1.0";
