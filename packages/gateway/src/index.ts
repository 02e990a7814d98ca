export * from './topology';
export * from './health';
export * from './gateway';
