// WebSocket-Node (npm "websocket") echo server for the benchmarks.
//
//     node websocket_node_echo.js --port PORT
//
// Default options except: keepalive off (as for every peer) and maxReceivedFrameSize /
// maxReceivedMessageSize raised to 4 MiB (the defaults, 64 KiB and 1 MiB, would refuse the
// 1 MiB single-frame messages of echo-large). Requests are accepted in a "request" listener,
// as the README shows. A text message starting with "broadcast:" is sent, unchanged, to every
// open connection with server.broadcastUTF.
"use strict";
const http = require("http");
const WebSocketServer = require("websocket").server;

const LIMIT = 4 * 1024 * 1024;
const i = process.argv.indexOf("--port");
const port = parseInt(process.argv[i + 1], 10);

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const wsServer = new WebSocketServer({
  httpServer,
  autoAcceptConnections: false,
  keepalive: false,
  maxReceivedFrameSize: LIMIT,
  maxReceivedMessageSize: LIMIT,
});

wsServer.on("request", (request) => {
  const connection = request.accept(null, request.origin);
  connection.on("message", (message) => {
    if (message.type === "utf8") {
      if (message.utf8Data.startsWith("broadcast:")) {
        wsServer.broadcastUTF(message.utf8Data);
      } else {
        connection.sendUTF(message.utf8Data);
      }
    } else {
      connection.sendBytes(message.binaryData);
    }
  });
  connection.on("error", () => {});
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`ready websocket-node on ${port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    wsServer.shutDown();
    httpServer.close();
    process.exit(0);
  });
}
