/**
 * @module
 * apprun's I/O engine: the epoll loop, connected sockets with write queues and backpressure,
 * and the acceptor. Speaks TypeScript types over `sys/`; no protocol here. Other areas import
 * only from here.
 */
export { EventLoop, type IoHandler, type Spin, SPIN_LONG, SPIN_NONE, SPIN_SHORT } from "./loop.ts";
export { READ_AGAIN, READ_EOF, READ_ERROR, Socket, type SocketHandler } from "./socket.ts";
export { Acceptor, type AcceptorOptions } from "./acceptor.ts";
export { ParkedFds } from "./parked.ts";
