/**
 * The classic-script build: `<script src="microsockets.global.js">` defines the global
 * `MicroSocket` (the same function the package exports), plus `MicroSocket.MicroSocketError`.
 */
import MicroSocket, { MicroSocketError } from "./index.js";

Object.defineProperty(MicroSocket, "MicroSocketError", { value: MicroSocketError });
(globalThis as { MicroSocket?: typeof MicroSocket }).MicroSocket = MicroSocket;
