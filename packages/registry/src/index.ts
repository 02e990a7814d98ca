export * from './app';
export * from './domain/events';
export * from './domain/registry';
export * from './domain/metadata-cache';
export * from './domain/upload-sessions';
export * from './domain/blob-store';
export * from './domain/manifest-store';
export * from './domain/tag-store';
