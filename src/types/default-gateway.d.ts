// default-gateway 7 ships no types; this declares the part rxnat uses.
declare module 'default-gateway' {
  export interface Result {
    gateway: string;
    version: 4 | 6;
    int: string | null;
  }
  export function gateway4async(): Promise<Result>;
  export function gateway6async(): Promise<Result>;
}
