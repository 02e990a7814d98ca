// Integration tests start real servers and clients: give them room (jest ignores a project-level testTimeout).
jest.setTimeout(180_000);
