// The client code of seed 002 ("Real-Time Chat Backend", Socket.IO Integration, Client
// Connection), as published, with only the server URL changed: http://localhost:5000 became the
// test server's address under the /flask-chat namespace (SEED_BASE_URL is set by the test). The
// placeholder 'your_jwt_token' is the token the test signed in for (SEED_TOKEN), and the socket
// is exported so the test can drive it.
import io from 'socket.io-client';

export const socket = io(`${process.env.SEED_BASE_URL}/flask-chat`, {
  auth: {
    token: process.env.SEED_TOKEN
  }
});
