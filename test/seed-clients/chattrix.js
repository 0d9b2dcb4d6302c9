// The two examples of seed 000 ("Chattrix" API reference, "Examples"), as published, with only
// their URLs changed for the /chattrix mount: `io()` became `io('/chattrix')` (the namespace)
// and the '/api/...' paths became '/chattrix/api/...'. They were written for a page of the app,
// where `io`, `fetch`, `document` and the page's own display functions are globals; here each
// example is wrapped in a function that takes those from the test, which plays the browser
// (fetch with the page's cookies and origin, socket.io-client with the cookie), and returns what
// the page would hold on to.

export function completeChatImplementation({ io, fetch, document, console, displayMessage, showTypingIndicator, hideTypingIndicator }) {
// Initialize Socket.IO connection
const socket = io('/chattrix');

// Join conversation
socket.emit('join_conversation', { conversation_id: 1 });

// Send message
function sendMessage(content) {
    fetch('/chattrix/api/conversations/1/messages', {
        method: 'POST',
        headers: {
            'Content-Type': 'application/json',
            'X-Requested-With': 'XMLHttpRequest'
        },
        body: JSON.stringify({
            content: content,
            type: 'text'
        })
    })
    .then(response => response.json())
    .then(data => {
        if (data.success) {
            console.log('Message sent via API');
        }
    });
}

// Listen for new messages
socket.on('new_message', (message) => {
    displayMessage(message);
});

// Handle typing indicators
let typingTimer;
document.getElementById('messageInput').addEventListener('input', () => {
    socket.emit('typing_start', { conversation_id: 1 });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
        socket.emit('typing_stop', { conversation_id: 1 });
    }, 1000);
});

// Listen for typing indicators
socket.on('user_typing', (data) => {
    showTypingIndicator(data.user);
});

socket.on('user_stopped_typing', (data) => {
    hideTypingIndicator(data.user);
});

return { socket, sendMessage };
}

export function fileUploadWithProgress({ fetch }) {
function uploadFile(file, conversationId) {
    const formData = new FormData();
    formData.append('file', file);
    formData.append('conversation_id', conversationId);

    return fetch('/chattrix/api/upload', {
        method: 'POST',
        body: formData
    })
    .then(response => response.json())
    .then(data => {
        if (data.success) {
            // Send file message
            return fetch(`/chattrix/api/conversations/${conversationId}/messages`, {
                method: 'POST',
                headers: {
                    'Content-Type': 'application/json'
                },
                body: JSON.stringify({
                    content: `Shared a file: ${data.file.name}`,
                    type: 'file',
                    file_url: data.file.url,
                    file_name: data.file.name,
                    file_size: data.file.size
                })
            });
        }
    });
}

return uploadFile;
}
