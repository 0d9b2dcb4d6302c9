// The client code of seed 004 ("Chat Socket Backend", React/JavaScript Integration), as
// published, with only the server URL changed: http://localhost:8000 became the test server's
// address under the /socket-chat mount (SEED_BASE_URL is set by the test).
import io from 'socket.io-client';

export class ChatService {
  constructor(token) {
    this.socket = io(`${process.env.SEED_BASE_URL}/socket-chat`, {
      auth: { token }
    });
    
    this.setupEventListeners();
  }
  
  setupEventListeners() {
    this.socket.on('connect', () => {
      console.log('Connected to chat server');
    });
    
    this.socket.on('new_message', (message) => {
      // Handle new message
      this.handleNewMessage(message);
    });
    
    this.socket.on('user_typing', (data) => {
      // Handle typing indicator
      this.handleTypingIndicator(data);
    });
  }
  
  sendMessage(toEmail, message) {
    this.socket.emit('send_message', {
      to_email: toEmail,
      message: message,
      message_type: 'text'
    });
  }
  
  joinConversation(conversationId) {
    this.socket.emit('join_conversation', {
      conversation_id: conversationId
    });
  }
  
  startTyping(conversationId) {
    this.socket.emit('typing_start', {
      conversation_id: conversationId
    });
  }
  
  stopTyping(conversationId) {
    this.socket.emit('typing_stop', {
      conversation_id: conversationId
    });
  }
}

export class ChatAPI {
  constructor(token) {
    this.baseURL = `${process.env.SEED_BASE_URL}/socket-chat/api`;
    this.token = token;
  }
  
  async getConversations() {
    const response = await fetch(`${this.baseURL}/conversations`, {
      headers: {
        'Authorization': `Bearer ${this.token}`
      }
    });
    return response.json();
  }
  
  async getMessages(conversationId, skip = 0, limit = 50) {
    const response = await fetch(
      `${this.baseURL}/conversations/${conversationId}/messages?skip=${skip}&limit=${limit}`,
      {
        headers: {
          'Authorization': `Bearer ${this.token}`
        }
      }
    );
    return response.json();
  }
  
  async sendMessage(toEmail, message) {
    const response = await fetch(`${this.baseURL}/messages/send`, {
      method: 'POST',
      headers: {
        'Authorization': `Bearer ${this.token}`,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({
        to_email: toEmail,
        message: message,
        message_type: 'text'
      })
    });
    return response.json();
  }
  
  async searchUsers(query) {
    const response = await fetch(
      `${this.baseURL}/users/search?query=${encodeURIComponent(query)}`,
      {
        headers: {
          'Authorization': `Bearer ${this.token}`
        }
      }
    );
    return response.json();
  }
}
