export * from './topology';
export * from './health';
export * from './gateway';
export { answerClientError } from './errors';
